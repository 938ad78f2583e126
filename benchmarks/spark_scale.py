"""How `measure` and `score` grow with the subscriber base on Spark and on DuckDB, and what a 10M-subscriber
day would need, extrapolated from the measured sizes.

    python benchmarks/spark_scale.py --out DIR [--sizes 10000,30000,100000] [--days 7] [--seed 29] [--master 'local[2]'] [--model M] [--engines spark]

For each size: `opencem synth` (kept in DIR between runs), then on each engine a fresh workspace measured
with `opencem measure` and scored with `opencem score` (the model: ``--model``, or `opencem train nps` on
the smallest size's DuckDB workspace; copied into the others; scoring does not refit). Each command runs as a child
process; its wall time and the peak RSS of its process tree (Python and, on Spark, the JVM; sampled every
0.2 s) are recorded, and the base NPS of the two engines compared. Then time = a + b x subscribers is fitted
per engine and stage and extrapolated to 1M and 10M (times only: memory is bounded by DuckDB's limit and
Spark's heap, beyond which they spill). Appends a JSON line to
benchmarks/results/spark_scale.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

RESULTS = Path(__file__).parent / "results" / "spark_scale.jsonl"


def tree_rss_mib(root: int) -> float:
    """Resident memory of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            children.setdefault(int(fields[1]), []).append(int(d.name))
            rss[int(d.name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total / 2**20


def run(cmd: list[str]) -> dict:
    """Wall seconds and peak process-tree RSS of one command (its standard error is shown if it fails)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = [0.0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss_mib(proc.pid))
            time.sleep(0.2)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    _, err = proc.communicate()
    t.join()
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err[-3000:]}")
    return {"s": round(time.perf_counter() - t0, 1), "peak_rss_mib": round(peak[0])}


def base_nps(ws: Path) -> float:
    scores = pq.read_table(sorted((ws / "nps" / "scores").rglob("*.parquet"))[-1], columns=["p_promoter", "p_detractor"])
    return round(100 * float(np.mean(scores["p_promoter"].to_numpy() - scores["p_detractor"].to_numpy())), 4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--sizes", default="10000,30000,100000")
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--seed", type=int, default=29)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--engines", default="duckdb,spark", help="the engines to run, comma-separated (the base NPS comparison needs both)")
    ap.add_argument("--model", type=Path, default=None, help="an NPS model folder to score with (default: trained on the smallest size)")
    a = ap.parse_args()
    cli = [str(Path(sys.executable).with_name("opencem"))]
    sizes = sorted(int(s) for s in a.sizes.split(","))
    os.environ.setdefault("OPENCEM_PSEUDONYM_KEY", "benchmark-key")  # the same pseudonyms in every workspace
    rows, model = [], a.model
    for n in sizes:
        data = a.out / f"op-{n}"
        if not (data / "inputs").is_dir():
            print(f"synth {n:,} x {a.days} days", flush=True)
            run(cli + ["synth", "--out", str(data), "--subscribers", str(n), "--days", str(a.days), "--seed", str(a.seed)])
        xdr_rows = sum(pq.read_metadata(f).num_rows for f in (data / "inputs" / "xdr").rglob("*.parquet"))
        row = {"subscribers": n, "days": a.days, "xdr_rows": xdr_rows}
        for engine in a.engines.split(","):
            ws = a.out / f"ws-{n}-{engine}"
            shutil.rmtree(ws, ignore_errors=True)
            on = ["--engine", engine] + (["--spark-master", a.master] if engine == "spark" else [])
            print(f"{n:,} subscribers on {engine}: measure", flush=True)
            row[f"{engine}_measure"] = run(cli + ["measure", "--data", str(data), "--workspace", str(ws)] + on)
            if model is None:
                run(cli + ["train", "nps", "--workspace", str(ws)])
                model = a.out / "model-nps"
                shutil.rmtree(model, ignore_errors=True)
                shutil.copytree(ws / "models" / "nps", model)
            elif not (ws / "models" / "nps").exists():
                shutil.copytree(model, ws / "models" / "nps")
            print(f"{n:,} subscribers on {engine}: score", flush=True)
            row[f"{engine}_score"] = run(cli + ["score", "--workspace", str(ws)] + on)
            row[f"{engine}_base_nps"] = base_nps(ws)
        if "duckdb_base_nps" in row and "spark_base_nps" in row:
            row["same_base_nps"] = abs(row["duckdb_base_nps"] - row["spark_base_nps"]) < 1e-6
        print(json.dumps(row), flush=True)
        rows.append(row)
    fits = {}
    for key in (k for k in ("duckdb_measure", "spark_measure", "duckdb_score", "spark_score") if k in rows[0]):
        x = np.array([r["subscribers"] for r in rows], float)
        y = np.array([r[key]["s"] for r in rows], float)
        b, c = np.polyfit(x, y, 1) if len(rows) > 1 else (y[0] / x[0], 0.0)
        # memory is not extrapolated: DuckDB's memory limit and Spark's heap cap it (beyond, they spill)
        fits[key] = {"fixed_s": round(c, 1), "s_per_100k": round(b * 1e5, 1), "at_1m_s": round(c + b * 1e6), "at_10m_s": round(c + b * 1e7)}
    out = {"benchmark": "spark_scale", "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "master": a.master, "cpus": os.cpu_count(),
           "seed": a.seed, "rows": rows, "linear_fit": fits}
    print(json.dumps(fits, indent=1))
    RESULTS.parent.mkdir(exist_ok=True)
    with open(RESULTS, "a") as fh:
        fh.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
