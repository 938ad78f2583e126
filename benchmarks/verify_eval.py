"""Verification against the synthetic operator's truth, on closed-loop runs already made
(`benchmarks/loop_eval.py --out DIR`): verifies again, with today's `opencem.loop.verify`, the fixes each
run carried out, on its after-fix workspace and model, and compares each estimate with the true lift of
its fix (the truth's with / without worlds) on the subscribers it verified (``true_treated``, the figure
``true_inside_ci`` counts); ``true`` and ``true_all_inside_ci`` are over every subscriber the fix touched.

    python benchmarks/verify_eval.py --run /tmp/loop-17 --run /tmp/loop-19 --run /tmp/loop-23

``--truth-panel`` runs the same design (treated, controls, matching, windows, placebo) on the truth's own
expected NPS of each subscriber on each day (P(answer 9-10) - P(answer 0-6) from the latent satisfaction
and the answer noise) instead of the model's: what the design reads when the NPS is known exactly, so a
miss there is the design's and not the model's. Its interval holds no model error (the replicas are the
panel itself).

Appends one JSON line per run to benchmarks/results/verify_eval.jsonl (``panel``: model or truth).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from scipy.stats import norm

from opencem.demo import _true_effects, true_lift_of
from opencem.ingest.pseudonym import Pseudonymiser, load_key
from opencem.loop import verify as verify_module
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
        ci = (nps["ci_low"], nps["ci_high"])
        rows.append({"fix": v["fix_id"], "subscribers": v["subscribers"], "window_days": v["window_days"],
                     "predicted": v["predicted_nps_lift"], "did_nps": nps["estimate"], "ci": [nps["ci_low"], nps["ci_high"]],
                     "true": true, "true_treated": treated, "true_inside_ci": _inside(treated, ci), "true_all_inside_ci": _inside(true, ci),
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


def _inside(t: float | None, ci: tuple[float, float]) -> bool:
    return bool(t is not None and ci[0] <= t <= ci[1])


def _truth_panel(run: Path) -> type:
    """verify's NPS panel with the model's daily NPS of each subscriber replaced by the truth's (after-fix world)."""
    op, ws = run / "after" / "operator", run / "after" / "workspace"
    noise = json.loads((op / "truth" / "manifest.json").read_text())["answer_noise_sd"]
    daily = pq.read_table(op / "truth" / "subscriber_daily", columns=["subscriber_id", "date", "satisfaction"])
    sat = daily["satisfaction"].to_numpy().astype(float)
    # an answer is the latent satisfaction plus noise, rounded: 9-10 from 8.5 up, 0-6 below 6.5
    nps = 100 * (norm.sf((8.5 - sat) / noise) - norm.cdf((6.5 - sat) / noise))
    ids = Pseudonymiser(load_key(Workspace(ws).pseudonym_key)).column(daily["subscriber_id"]).to_pylist()
    truth = dict(zip(zip(ids, daily["date"].to_pylist()), nps.tolist()))

    class TruthPanel(verify_module._NpsPanel):
        def _estimate(self, engine, model, ids):
            nps = np.array([[truth.get((s, self.start + dt.timedelta(days=k)), np.nan) for k in range(self.days)] for s in ids])
            return nps, np.repeat(nps[None], 2, axis=0)  # no model error: the replicas are the panel

    return TruthPanel


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, action="append", required=True, help="a loop_eval.py --out folder (repeat for several)")
    ap.add_argument("--days", type=int, default=POST_DAYS, help="days after the fix to read (fewer if the data ends sooner)")
    ap.add_argument("--truth-panel", action="store_true", help="the design on the truth's own daily NPS, not the model's")
    a = ap.parse_args()
    results = Path(__file__).parent / "results" / "verify_eval.jsonl"
    model_panel = verify_module._NpsPanel
    for run in a.run:
        # verify() builds its panel from the module's class at call time: swapped for this run only
        verify_module._NpsPanel = _truth_panel(run) if a.truth_panel else model_panel
        line = {**check(run, a.days), "panel": "truth" if a.truth_panel else "model"}
        print(json.dumps(line, indent=1), flush=True)
        with results.open("a") as f:
            f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
