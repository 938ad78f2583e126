"""Measure-stage throughput against a plain DuckDB aggregation over the same Parquet.

    opencem synth --out bench-op --subscribers 1000000 --days 7
    python benchmarks/measure_scale.py --data bench-op --workspace bench-ws

Times, in one run: (1) a plain DuckDB GROUP BY (subscriber, service, day) with the same KQI aggregates
over the input xDR Parquet; (2) the whole `opencem measure` stage on DuckDB (ingest with validation and
pseudonymisation, KPI, KQI, CEI, the per-subscriber summaries, writes) with DuckDB's resources as set
from the machine (or OPENCEM_MEMORY_LIMIT / OPENCEM_THREADS). The plain aggregation runs in a child
process, so the peak RSS is the measure stage's. Appends a JSON line to benchmarks/results/measure_scale.jsonl.

``--copy-floor`` also times (3) a plain DuckDB copy of the same xDR Parquet to zstd Parquet, every column
as it is: the least any ingest that writes the lake once must do. The copy plus the GROUP BY is then the
floor of a measure stage that ingests to a lake and aggregates from it (no validation, no pseudonym).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import time
from pathlib import Path

import duckdb

from opencem.engine.duckdb_engine import resources
from opencem.measure.run import measure
from opencem.workspace import Workspace

PLAIN = """
SELECT subscriber_id, service, CAST(start_time AS DATE) AS day, count(*) AS sessions,
  sum(volume_dl_bytes + volume_ul_bytes) / 1e6 AS volume_mb, avg(CASE WHEN success THEN 1.0 ELSE 0.0 END),
  avg(throughput_dl_kbps), avg(rtt_ms), avg(jitter_ms), avg(page_load_ms),
  avg(CASE WHEN page_load_ms > 5000 THEN 1.0 WHEN page_load_ms IS NOT NULL THEN 0.0 END),
  avg(initial_buffer_ms), sum(stall_ms), avg(CASE WHEN stall_count > 0 THEN 1.0 WHEN stall_count IS NOT NULL THEN 0.0 END),
  avg(video_bitrate_kbps), avg(video_resolution_p), avg(call_setup_ms),
  avg(CASE WHEN call_dropped THEN 1.0 WHEN call_dropped IS NOT NULL THEN 0.0 END),
  avg(voice_delay_ms), avg(packet_loss_pct)
FROM read_parquet('{glob}') GROUP BY ALL
"""


def plain_groupby(glob: str) -> tuple[int, float]:
    """Rows and seconds of the plain aggregation, run in a child process so that its memory is not
    counted in the measure stage's peak."""
    con = duckdb.connect()
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{glob}')").fetchone()[0]
    t0 = time.perf_counter()
    con.execute("CREATE TABLE plain AS " + PLAIN.format(glob=glob))
    return rows, time.perf_counter() - t0


def plain_copy(glob: str, out: str) -> float:
    """Seconds of a plain copy of the xDR to zstd Parquet (one file per thread), in a child process."""
    con = duckdb.connect()
    t0 = time.perf_counter()
    con.execute(f"COPY (SELECT * FROM read_parquet('{glob}')) TO '{out}' "
                "(FORMAT parquet, COMPRESSION zstd, PER_THREAD_OUTPUT true, OVERWRITE_OR_IGNORE true)")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--workspace", type=Path, required=True)
    ap.add_argument("--copy-floor", action="store_true", help="also time a plain copy of the xDR to Parquet (the ingest's floor)")
    a = ap.parse_args()
    inputs = a.data / "inputs" if (a.data / "inputs").is_dir() else a.data
    glob = str(inputs / "xdr" / "*" / "*.parquet")
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        rows, plain_s = pool.apply(plain_groupby, (glob,))
        copy_s = None
        if a.copy_floor:
            out = a.workspace.with_name(a.workspace.name + "-copy-floor")
            copy_s = pool.apply(plain_copy, (glob, str(out)))
            shutil.rmtree(out)

    marks: list[tuple[str, float]] = []

    def progress(step: str, done: int, total: int) -> None:
        marks.append(("ingest" if step.startswith("ingest") else step.strip(), time.perf_counter()))

    if not Workspace(a.workspace).pseudonym_key.exists():  # a workspace measured with its own key file keeps that key
        os.environ.setdefault("OPENCEM_PSEUDONYM_KEY", "benchmark-key")
    t0 = time.perf_counter()
    marks.append(("ingest", t0))
    res = measure(a.data, a.workspace, "duckdb", progress=progress)
    end = time.perf_counter()
    stage_s = end - t0
    steps: dict[str, float] = {}
    for (name, t), (_, t_next) in zip(marks, marks[1:] + [("end", end)]):
        steps[name] = steps.get(name, 0.0) + t_next - t
    result = {
        "benchmark": "measure_scale", "xdr_rows": rows, "plain_groupby_s": round(plain_s, 1),
        "plain_rows_per_s": round(rows / plain_s), "measure_stage_s": round(stage_s, 1),
        "measure_rows_per_s": round(rows / stage_s), "ratio_stage_to_plain": round(stage_s / plain_s, 2),
        **({"plain_copy_s": round(copy_s, 1), "ratio_floor_to_plain": round((copy_s + plain_s) / plain_s, 2)} if copy_s else {}),
        "step_seconds": {k: round(v, 1) for k, v in steps.items()},
        "output_rows": res.rows, "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "duckdb": resources(), "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=1))
    with open(Path(__file__).parent / "results" / "measure_scale.jsonl", "a") as f:
        f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
