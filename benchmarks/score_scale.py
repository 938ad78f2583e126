"""`opencem score` at scale: every subscriber's probabilities, all segment / grid / cell NPS and the
drivers and evidence of the potential detractors, with time per step and peak RSS.

    opencem synth --out bench-op --subscribers 1000000 --days 7
    python benchmarks/score_scale.py --data bench-op --workspace bench-ws --model DEMO/after/workspace/models/nps

The workspace is measured first when it has no measure tables (that time is reported apart). The model
is any NPS model trained on the same features (the demo's); scoring does not refit.

``--weeks 4`` scores on a 28-day window: a second workspace beside the first whose measure tables hold
the measured week and, before it, the same week again three times (day partitions linked under earlier
dates). The rows the window reads are then those of 28 measured days; the values repeat. Raw xDR (read for
the round trips of the potential detractors' cells over the last 7 days) stays the measured one.

``--yesterday`` scores the day before first, untimed, as yesterday's daily run would: the timed score then
advances the window's kept counts of main cells and places by a day (nps/places.py) instead of counting
the window whole.

Appends a JSON line to benchmarks/results/score_scale.jsonl.
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

from opencem.engine.pipeline import sql_file
from opencem.measure.run import measure
from opencem.nps.score import score
from opencem.workspace import MEASURE_TABLES, Workspace


def repeat_weeks(ws: Path, out: Path, weeks: int) -> Path:
    """A workspace at ``out`` that shares ``ws``'s lake and model, with each measure table's day
    partitions linked again under the dates 7, 14, ... days earlier."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in ("lake", "models", ".secrets"):
        (out / name).symlink_to((ws / name).resolve())
    for table in MEASURE_TABLES:
        for part in sorted((ws / "measure" / table).glob("day=*")):
            day = dt.date.fromisoformat(part.name[4:])
            for k in range(weeks):
                target = out / "measure" / table / f"day={day - dt.timedelta(days=7 * k)}"
                target.mkdir(parents=True)
                for f in part.iterdir():
                    (target / f.name).symlink_to(f.resolve())
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True, help="a synthetic operator (opencem synth --out)")
    ap.add_argument("--workspace", type=Path, required=True)
    ap.add_argument("--model", type=Path, required=True, help="an NPS model folder (WS/models/nps)")
    ap.add_argument("--weeks", type=int, default=1, help="repeat the measured week to fill this many weeks")
    ap.add_argument("--yesterday", action="store_true",
                    help="score the day before first (not timed), so that the timed score advances its kept state")
    a = ap.parse_args()

    if not Workspace(a.workspace).pseudonym_key.exists():  # a workspace measured with its own key file keeps that key
        os.environ.setdefault("OPENCEM_PSEUDONYM_KEY", "benchmark-key")
    ws = Workspace(a.workspace)
    measure_s = None
    if not all(ws.measure_files(t) for t in MEASURE_TABLES):
        t0 = time.perf_counter()
        measure(a.data, ws.root, "duckdb")
        measure_s = round(time.perf_counter() - t0, 1)
    if not (ws.model("nps") / "state.json").is_file():
        shutil.copytree(a.model, ws.model("nps"))
    root = ws.root if a.weeks == 1 else repeat_weeks(ws.root, ws.root.with_name(ws.root.name + f"-{a.weeks}w"), a.weeks)

    if a.yesterday:
        with Workspace(root).session() as engine:
            last = engine.query_row(sql_file("opencem.nps", "measured_days"))[1]
        score(root, as_of=last)
    marks: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    res = score(root, progress=lambda msg: marks.append((msg.split(" ")[0], time.perf_counter())))
    end = time.perf_counter()
    steps = {name: round(nxt - at, 1) for (name, at), nxt in zip(marks, [m[1] for m in marks[1:]] + [end])}
    rec = {
        "benchmark": "score_scale", "subscribers": res.scores.num_rows, "window_weeks": a.weeks, "kept_state": a.yesterday,
        "as_of": str(res.as_of), "score_s": round(end - t0, 1),
        "subscribers_per_s": round(res.scores.num_rows / (end - t0)), "step_seconds": steps,
        "potential_detractors": res.detractors.num_rows, "segments": res.segments.num_rows,
        "measure_s": measure_s, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(rec))
    out = Path(__file__).parent / "results" / "score_scale.jsonl"
    with out.open("a") as f:
        f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
