"""Verification against the synthetic operator's truth, on closed-loop runs already made
(`benchmarks/loop_eval.py --out DIR`): verifies again, with today's `opencem.loop.verify`, the fixes each
run carried out, on its after-fix workspace and model, and compares each estimate with the true lift of
its fix (the truth's with / without worlds) on the subscribers it verified (``true_treated``, the figure
``true_inside_ci`` counts); ``true`` and ``true_all_inside_ci`` are over every subscriber the fix touched.

    python benchmarks/verify_eval.py --run /tmp/loop-17 --run /tmp/loop-19 --run /tmp/loop-23

Appends one JSON line per run to benchmarks/results/verify_eval.jsonl.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pyarrow.parquet as pq

from opencem.demo import _true_effects, true_lift_of
from opencem.loop.verify import POST_DAYS, verify
from opencem.nps.model import NpsModel
from opencem.workspace import Workspace


def check(run: Path, days: int) -> dict:
    ws = run / "after" / "workspace"
    folder = run / "before" / "workspace" / "loop" / "prioritise"
    expected = {r["fix_id"]: r["expected_nps_lift"] for r in pq.read_table(folder / "candidates.parquet").to_pylist()}
    truth = _true_effects(run / "after" / "operator")
    fix_date = {r["fix_id"]: r["fix_date"] for r in pq.read_table(run / "after" / "operator" / "truth" / "fixes.parquet").to_pylist()}
    fixes = [{**r, "fix_date": fix_date[r["fix_id"]], "expected_nps_lift": expected[r["fix_id"]]}
             for r in json.loads((folder / "fix_requests.json").read_text())]
    t0 = time.perf_counter()
    out = verify(ws, fixes, days, NpsModel.load(Workspace(ws).model("nps")))
    rows = []
    for v in out:
        true = truth.get(v["fix_id"], {}).get("nps_lift")
        if "not_verified" in v:
            rows.append({"fix": v["fix_id"], "not_verified": v["not_verified"], "true": true})
            continue
        nps, p = v["effects"][0], v["placebo"]
        treated = true_lift_of(run / "after" / "operator", ws, v["fix_id"], v["treated_ids"])
        inside = lambda t: bool(t is not None and nps["ci_low"] <= t <= nps["ci_high"])  # noqa: E731
        rows.append({"fix": v["fix_id"], "subscribers": v["subscribers"], "window_days": v["window_days"],
                     "predicted": v["predicted_nps_lift"], "did_nps": nps["estimate"], "ci": [nps["ci_low"], nps["ci_high"]],
                     "true": true, "true_treated": treated, "true_inside_ci": inside(treated), "true_all_inside_ci": inside(true),
                     "placebo": p["estimate"], "placebo_ci": [p["ci_low"], p["ci_high"]],
                     "placebo_holds_zero": bool(p["ci_low"] <= 0 <= p["ci_high"]), "verdict": v["verdict"], "warnings": v["warnings"]})
    done = [r for r in rows if "did_nps" in r]
    empty = [r for r in done if not r["true"]]
    return {"run": run.name, "seed": json.loads((run / "after" / "operator" / "truth" / "manifest.json").read_text())["config"]["seed"],
            "fixes": len(rows), "verified": len(done),
            "true_inside_ci": sum(r["true_inside_ci"] for r in done), "true_all_inside_ci": sum(r["true_all_inside_ci"] for r in done),
            "placebo_holds_zero": sum(r["placebo_holds_zero"] for r in done),
            "repaired_nothing": len(empty), "repaired_nothing_holds_zero": sum(bool(r["ci"][0] <= 0 <= r["ci"][1]) for r in empty),
            "safe": sum(r["verdict"] == "safe" for r in done),
            # is a safe verdict worth its word: the truth inside the interval of the fixes called safe
            "safe_true_inside_ci": sum(r["true_inside_ci"] for r in done if r["verdict"] == "safe"),
            "seconds": round(time.perf_counter() - t0, 1), "checks": rows}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, action="append", required=True, help="a loop_eval.py --out folder (repeat for several)")
    ap.add_argument("--days", type=int, default=POST_DAYS, help="days after the fix to read (fewer if the data ends sooner)")
    a = ap.parse_args()
    results = Path(__file__).parent / "results" / "verify_eval.jsonl"
    for run in a.run:
        line = check(run, a.days)
        print(json.dumps(line, indent=1), flush=True)
        with results.open("a") as f:
            f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
