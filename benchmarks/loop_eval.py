"""The closed loop against the synthetic operator's truth: true NPS gained by the fixes our ranking
buys vs those severity ranking buys with the same budget, and each verification estimate vs the true
effect of its fix on the subscribers it verified (``true_treated``; ``true`` is over every subscriber the
fix touched, the figure predicted lifts are compared with).

    python benchmarks/loop_eval.py --out /tmp/loop --subscribers 20000 --days 28 --fix-day 21 --seed 7

Runs `opencem demo`'s loop (run_loop) and appends one JSON line to benchmarks/results/loop_eval.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from opencem.demo import LoopConfig, run_loop


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--subscribers", type=int, default=20_000)
    ap.add_argument("--days", type=int, default=28)
    ap.add_argument("--fix-day", type=int, default=21)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--budget", type=int, default=8)
    a = ap.parse_args()
    cfg = LoopConfig(a.subscribers, a.days, a.seed, a.fix_day, a.budget, workers=os.cpu_count() or 1)
    t0 = time.perf_counter()
    res = run_loop(a.out, cfg, say=lambda m: print(m, flush=True))
    s = res.summary
    checks = []
    for v in s["verification"]:
        nps = next(e for e in v["effects"] if e["metric"] == "nps")
        truth, treated = v["true_nps_lift"], v["true_nps_lift_treated"]
        checks.append({"fix": v["fix_id"], "subscribers": v["subscribers"], "predicted": v["predicted_nps_lift"],
                       "did_nps": nps["estimate"], "ci": [nps["ci_low"], nps["ci_high"]], "true": truth,
                       "true_treated": treated, "true_latent": v.get("true_nps_lift_latent"),
                       # the estimate's own subscribers; "true" is over every subscriber the fix touched
                       "true_inside_ci": treated is not None and nps["ci_low"] <= treated <= nps["ci_high"],
                       "true_all_inside_ci": truth is not None and nps["ci_low"] <= truth <= nps["ci_high"],
                       "placebo": v["placebo"]["estimate"], "placebo_ci": [v["placebo"]["ci_low"], v["placebo"]["ci_high"]],
                       "placebo_holds_zero": v["placebo"]["ci_low"] <= 0 <= v["placebo"]["ci_high"],
                       "window_days": v["window_days"], "verdict": v["verdict"]})
    line = {"subscribers": a.subscribers, "days": a.days, "fix_day": a.fix_day, "seed": a.seed, "budget_units": a.budget,
            "ranking": s["ranking"], "verification": checks, "tickets": s["tickets"], "care_list": s["care_total"],
            "base_nps": s["kpis"]["base_nps"], "true_nps": s["kpis"]["true_nps"], "nps_level": s["nps_level"],
            "nps_trend": s["nps_trend"], "seconds": round(time.perf_counter() - t0)}
    print(json.dumps(line, indent=1))
    results = Path(__file__).parent / "results" / "loop_eval.jsonl"
    with results.open("a") as f:
        f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
