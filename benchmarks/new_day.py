"""One new day at scale: `measure --new-only`, `score` and `diagnose` of that day alone, with time and peak RSS.

    opencem synth --out bench-op --subscribers 1000000 --days 7
    python benchmarks/measure_scale.py --data bench-op --workspace bench-ws     # every day once
    python benchmarks/new_day.py --data bench-op --workspace bench-ws --model DEMO/after/workspace/models/nps

The last day's day-partitioned input files (sessions, measurement reports, PM) are given a new
modification time, so `measure --new-only` finds them new: it ingests them alone and recomputes that
day, as it would for a day that had just arrived. `score` then scores the base as of the end of that
day (its features include it), and `diagnose` runs the twin on the window that ends with it
(`--twin-days`, default 7: its baselines need the days before). Before the day arrives, the window that ends the day before is diagnosed
and scored (yesterday's run, not timed), so the twin's state of the earlier days and the window's counts of
main cells and places are kept and only the new day's are built (twin/state.py, nps/places.py);
`--no-yesterday` times a score and a diagnosis with no kept state. The model is any NPS model
trained on the same features (the demo's); scoring does not refit.

Appends a JSON line to benchmarks/results/new_day.jsonl.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import time
from pathlib import Path

from opencem.contracts.validate import find_table_files, inputs_folder
from opencem.engine import StepError
from opencem.measure.run import measure
from opencem.nps.score import score
from opencem.twin.run import diagnose
from opencem.workspace import Workspace

NEW_DAY_TABLES = ("xdr", "radio_samples", "pm")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True, help="a synthetic operator (opencem synth --out)")
    ap.add_argument("--workspace", type=Path, required=True, help="a workspace measured on every day of --data")
    ap.add_argument("--model", type=Path, required=True, help="an NPS model folder (WS/models/nps)")
    ap.add_argument("--twin-days", type=int, default=7, help="the window diagnose runs on, ending with the new day")
    ap.add_argument("--no-yesterday", action="store_true", help="do not score and diagnose the day before first (no kept state)")
    a = ap.parse_args()
    if not Workspace(a.workspace).pseudonym_key.exists():  # a workspace measured with its own key file keeps that key
        os.environ.setdefault("OPENCEM_PSEUDONYM_KEY", "benchmark-key")
    ws = Workspace(a.workspace)
    if not (ws.model("nps") / "state.json").is_file():
        shutil.copytree(a.model, ws.model("nps"))

    inputs = inputs_folder(a.data)
    files = [f for t in NEW_DAY_TABLES for f in find_table_files(inputs, t)]
    last = max(p.name for f in files for p in [f.parent] if p.name.startswith("day="))
    touched = [f for f in files if f.parent.name == last]
    day = dt.date.fromisoformat(last.split("=", 1)[1])
    shutil.rmtree(ws.twin_days, ignore_errors=True)  # no state kept by earlier runs of the benchmark
    if not a.no_yesterday:  # yesterday's run: the days of the window before the new one
        score(ws.root, as_of=day)  # keeps the window's counts of main cells and places (nps/places.py)
        diagnose(ws.root, start=day - dt.timedelta(days=a.twin_days - 1), end=day)
    now = time.time_ns()
    for f in touched:  # the day "arrives": new files as far as the lake's manifest can tell
        os.utime(f, ns=(now, now))

    seconds = {}
    t0 = time.perf_counter()
    res = measure(a.data, ws.root, "duckdb", new_only=True)
    seconds["measure"] = time.perf_counter() - t0
    print(f"measure {seconds['measure']:.1f} s", flush=True)
    if res.days != [day]:
        raise SystemExit(f"measure computed {res.days or 'every day'}, not {day} alone: measure the workspace fully first")
    t0 = time.perf_counter()
    scored = score(ws.root, as_of=day + dt.timedelta(days=1))  # the base as of the end of the new day
    seconds["score"] = time.perf_counter() - t0
    print(f"score {seconds['score']:.1f} s", flush=True)
    t0 = time.perf_counter()
    try:
        diag, failed = diagnose(ws.root, start=day - dt.timedelta(days=a.twin_days - 1), end=day + dt.timedelta(days=1)), None
    except StepError as e:  # recorded, not hidden: at 1M a week's twin state has spilled the disk full
        diag, failed = None, f"step {e.step}: {e.error.splitlines()[0]}"
    seconds["diagnose"] = time.perf_counter() - t0
    rec = {
        "benchmark": "new_day", "day": str(day), "subscribers": scored.scores.num_rows,
        "files_ingested": len(touched), "files_unchanged": res.ingest.skipped,
        "rows_ingested": sum(res.ingest.rows.values()),
        "twin_days": a.twin_days, "twin_days_built": diag.days_built if diag else None,
        "twin_days_kept": diag.days_reused if diag else None, "episodes": diag.episodes.num_rows if diag else None,
        "grid_hours": diag.grid_hours if diag else None, "diagnose_failed": failed,
        "seconds": {k: round(v, 1) for k, v in seconds.items()}, "total_s": round(sum(seconds.values()), 1),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, "cpus": os.cpu_count(),
    }
    print(json.dumps(rec))
    with (Path(__file__).parent / "results" / "new_day.jsonl").open("a") as f:
        f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
