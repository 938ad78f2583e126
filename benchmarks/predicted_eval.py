"""Predicted fix lifts and their intervals against the synthetic operator's truth, on closed-loop runs
already made (`benchmarks/loop_eval.py --out DIR`): runs the what-if again, with today's code, for every fix
the run carried out, on its before-fix workspace and model, as `prioritise` does (the 14 days before the
fix day, the lift averaged over the 7 after it), and compares the lift and its 95 % interval for the model's
error (the bootstrap replicas) with the true lift over every subscriber the fix touched; and the plan's
expected base-NPS gain and its interval with the plan's true gain.

    python benchmarks/predicted_eval.py --run /tmp/loop-17 --run /tmp/loop-19

Appends one JSON line per run to benchmarks/results/predicted_eval.jsonl.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from opencem.demo import _true_effects
from opencem.loop.prioritise import RECENT_DAYS
from opencem.twin.whatif import WhatIfEngine, lift_interval

LOOKBACK_DAYS = 14  # prioritise's default


def check(run: Path) -> dict:
    ws = run / "before" / "workspace"
    folder = ws / "loop" / "prioritise"
    candidates = {r["fix_id"]: r for r in pq.read_table(folder / "candidates.parquet").to_pylist()}
    truth = _true_effects(run / "after" / "operator")
    fix_day = dt.date.fromisoformat(pq.read_table(run / "after" / "operator" / "truth" / "fixes.parquet")["fix_date"][0].as_py())
    summary = json.loads((run / "summary.json").read_text())
    t0 = time.perf_counter()
    rows, plan, plan_replicas = [], 0.0, []
    with WhatIfEngine(ws, fix_day - dt.timedelta(days=LOOKBACK_DAYS), fix_day) as whatif:
        for f in json.loads((folder / "fix_requests.json").read_text()):
            c = candidates[f["fix_id"]]
            w = whatif.run(c["action"], cells=c["cells"] or None, device_model=c["device_model"], horizon_days=RECENT_DAYS)
            low, high = w.nps_lift_interval
            true = truth.get(f["fix_id"], {}).get("nps_lift", 0.0)
            # the plan's gain: each fix's lift on its subscribers over the base, as prioritise weighs it
            per_base = c["expected_base_nps_lift"] / c["expected_nps_lift"] if c["expected_nps_lift"] else 0.0
            plan += w.nps_lift * per_base
            plan_replicas.append(np.asarray(w.replica_lifts) * per_base)
            rows.append({"fix": f["fix_id"], "action": c["action"], "subscribers": w.subscribers, "predicted": round(w.nps_lift, 3),
                         "ci": [round(low, 3), round(high, 3)], "true": round(true, 3),
                         "ratio": round(w.nps_lift / true, 3) if true >= 1 else None, "true_inside_ci": bool(low <= true <= high)})
    p_low, p_high = lift_interval(plan, np.sum(plan_replicas, axis=0))
    plan_true = summary["ranking"]["ours"]["true"]
    worth = [r for r in rows if r["true"] >= 1]
    return {"run": run.name, "seed": json.loads((run / "after" / "operator" / "truth" / "manifest.json").read_text())["config"]["seed"],
            "fixes": len(rows), "worth_1_point": len(worth), "worth_inside_ci": sum(r["true_inside_ci"] for r in worth),
            "repaired_nothing": sum(r["true"] == 0 for r in rows),
            "plan": {"expected": round(plan, 4), "ci": [round(p_low, 4), round(p_high, 4)], "true": plan_true,
                     "true_inside_ci": bool(p_low <= plan_true <= p_high)},
            "seconds": round(time.perf_counter() - t0, 1), "checks": rows}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, action="append", required=True, help="a loop_eval.py --out folder (repeat for several)")
    ap.add_argument("--code", help="a note on the code measured, kept with the line")
    a = ap.parse_args()
    results = Path(__file__).parent / "results" / "predicted_eval.jsonl"
    for run in a.run:
        line = check(run)
        if a.code:
            line["code"] = a.code
        print(json.dumps(line, indent=1), flush=True)
        with results.open("a") as f:
            f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
