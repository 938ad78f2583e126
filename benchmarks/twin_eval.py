"""Diagnosis accuracy against the synthetic operator's injected faults.

    opencem synth --out OP --subscribers 20000 --days 28 --survey-rate 0.3 --seed 5
    opencem measure --data OP --workspace WS
    opencem train nps --workspace WS            # for the what-if's NPS change
    python benchmarks/twin_eval.py --data OP --workspace WS [--skip-diagnose]

Prints and appends one JSON line to benchmarks/results/twin_eval.jsonl.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import pyarrow.parquet as pq

from opencem.twin.accuracy import confusion_matrix, evaluate, load_faults
from opencem.twin.run import diagnose, load_episodes
from opencem.vocabulary import CAUSES
from opencem.workspace import Workspace


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--workspace", type=Path, required=True)
    ap.add_argument("--skip-diagnose", action="store_true", help="score the episodes already in the workspace")
    ap.add_argument("--whatif", action="store_true", help="also score the what-if on the synthetic operator's fixes")
    a = ap.parse_args()
    t0 = time.perf_counter()
    if not a.skip_diagnose:
        diagnose(a.workspace, progress=print)
    secs = time.perf_counter() - t0
    ws = Workspace(a.workspace)
    with ws.session(tables=("cells",)) as engine:
        faults = load_faults(a.data / "truth", engine.table_arrow("cells"))
    # the window the twin was built on (its state's days), so a fault after it is not counted as missed
    days = sorted(dt.date.fromisoformat(f.name.split("=")[1]) for f in (ws.twin / "state_grid_hour").iterdir() if f.name.startswith("day="))
    first, last = days[0], days[-1]
    res = evaluate(load_episodes(a.workspace), faults, first, last + dt.timedelta(days=1),
                   units=pq.read_table(ws.twin / "episode_units.parquet"))
    manifest = a.data / "truth" / "manifest.json"
    config = json.loads(manifest.read_text())["config"] if manifest.exists() else {}
    res.update(data=str(a.data.name), window=[str(first), str(last)], seed=config.get("seed"), subscribers=config.get("subscribers"), days=config.get("days"), fix_day=config.get("fix_day"),
               diagnose_s=round(secs, 1) if not a.skip_diagnose else None)
    if a.whatif:
        from opencem.twin.whatif import fix_scenarios
        res["whatif"] = fix_scenarios(a.workspace, a.data / "truth")
    print(json.dumps(res, indent=1, default=str))
    print("per fault (found / cause right of faults):", ", ".join(f"{c} {v['found']}/{v['cause_right']} of {v['faults']}"
                                                                for c, v in res["by_cause"].items()))
    print("confusion of matched episodes (rows true, columns diagnosed):", " ".join(c[:6] for c in CAUSES))
    for c, row in zip(CAUSES, confusion_matrix(res["confusion"])):
        print(f"  {c:<13}", " ".join(f"{n:>6}" for n in row))
    out = Path(__file__).parent / "results" / "twin_eval.jsonl"
    out.parent.mkdir(exist_ok=True)
    with out.open("a") as fh:
        fh.write(json.dumps({"when": dt.datetime.now().isoformat(timespec="seconds"), **res}, default=str) + "\n")


if __name__ == "__main__":
    main()
