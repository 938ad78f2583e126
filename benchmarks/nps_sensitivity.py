"""How strongly the NPS model moves with experience, against the synthetic operator's truth: where the
predicted fix lifts lose their size.

Reads the output folder of `opencem demo` or `benchmarks/loop_eval.py` (``before/`` = the operator without
fixes, ``after/`` = the same operator with the fixes carried out, both measured; the model was trained on
``before/`` up to the fix day) and reports:

* **cross-section**: over the base on the fix day, the slope of the model's expected answer on the truth's
  network penalty (the truth's own slope is about -1), how much of that penalty the features can explain
  at all (R^2 of a gradient-boosted fit of the penalty on the features, half fitted, half judged: an
  oracle, never used by the product) and the model's slope on that explainable part;
* **realised response**: per carried-out fix, on the subscribers it touched and the week after the fix,
  the change of the model's NPS and expected answer between the two worlds (the same model on each
  world's own data, no what-if) beside the truth's change, over the week and on its last day alone
  (customers and the model's memories both take days to follow a fix), and the share of the truth's change of the
  network penalty that the oracle above sees in the features (the most any model on these features could
  follow). Other fixes touching the same subscribers are in both changes;
* **within customers**: the slope of the change of a customer's answer between two answers on the change
  of the model's expected answer (their earlier answer left out of the features), with a bootstrap
  interval.

    python benchmarks/nps_sensitivity.py --run /tmp/loop

Appends one JSON line to benchmarks/results/nps_sensitivity.jsonl.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from opencem.indicators.tree import load_tree
from opencem.ingest.pseudonym import Pseudonymiser, load_key
from opencem.nps.features import base_requests, build_features, feature_list
from opencem.nps.model import NpsModel
from opencem.nps.train import MIN_HISTORY_DAYS, _answers, survey_features
from opencem.workspace import Workspace

POST_DAYS = 7


def _truth_day(operator: Path, ws: Workspace, day: dt.date) -> pa.Table:
    """The truth's per-subscriber satisfaction and penalties of ``day``, under the workspace's pseudonyms."""
    d = pq.read_table(operator / "truth" / "subscriber_daily", filters=[("date", "=", day)])
    return d.set_column(0, "subscriber_id", Pseudonymiser(load_key(ws.pseudonym_key)).column(d["subscriber_id"]))


def _aligned(x: pa.Table, truth: pa.Table, cols: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    pos = {s: i for i, s in enumerate(truth["subscriber_id"].to_pylist())}
    i = np.array([pos.get(s, -1) for s in x["subscriber_id"].to_pylist()])
    ok = i >= 0
    return ok, {c: truth[c].to_numpy()[i[ok]].astype(float) for c in cols}


def cross_section(ws: Workspace, operator: Path, model: NpsModel, feats, day: dt.date) -> tuple[lgb.Booster, dict]:
    with ws.session() as engine:
        x = build_features(engine, base_requests(engine, day), feats)
    xm = model.encoder.matrix(x)
    ex = model.predict(xm)["expected_score"]
    ok, t = _aligned(x, _truth_day(operator, ws, day - dt.timedelta(days=1)), ["satisfaction", "network_penalty", "nonnetwork_penalty"])
    ex, xm, net, non = ex[ok], xm[ok], t["network_penalty"], t["nonnetwork_penalty"]
    a = np.column_stack([np.ones(len(net)), net, non])
    model_slopes = np.linalg.lstsq(a, ex, rcond=None)[0][1:]
    truth_slopes = np.linalg.lstsq(a, t["satisfaction"], rcond=None)[0][1:]
    half = np.arange(len(net)) % 2 == 0
    oracle = lgb.train({"objective": "regression", "learning_rate": 0.05, "num_leaves": 15, "num_threads": 2,
                        "seed": 1, "deterministic": True, "force_row_wise": True, "verbose": -1},
                       lgb.Dataset(xm[half], net[half]), 400)
    explained = oracle.predict(xm[~half])
    r2 = 1 - np.mean((net[~half] - explained) ** 2) / np.var(net[~half])
    return oracle, {"day": str(day), "subscribers": int(ok.sum()),
            "model_slope_on_network_penalty": round(float(model_slopes[0]), 3),
            "truth_slope_on_network_penalty": round(float(truth_slopes[0]), 3),
            "model_slope_on_nonnetwork_penalty": round(float(model_slopes[1]), 3),
            "truth_slope_on_nonnetwork_penalty": round(float(truth_slopes[1]), 3),
            "network_penalty_r2_from_features": round(float(r2), 3),
            "model_slope_on_explainable_penalty": round(float(np.polyfit(explained, ex[~half], 1)[0]), 3)}


def _latent_nps(s: np.ndarray) -> float:
    r = np.round(np.clip(s, 0, 10))
    return float(100 * ((r >= 9).mean() - (r <= 6).mean()))


def realised(run: Path, model: NpsModel, feats, fix_day: dt.date, oracle: lgb.Booster | None = None) -> list[dict]:
    fixes = pq.read_table(run / "after" / "operator" / "truth" / "fixes.parquet").to_pylist()
    touched = pq.read_table(run / "after" / "operator" / "truth" / "fix_affected.parquet")
    days = [fix_day + dt.timedelta(days=i) for i in range(1, POST_DAYS + 1)]
    out = []
    for fx in fixes:
        raw = pa.array(sorted(set(touched.filter(pc.equal(touched["fix_id"], fx["fix_id"]))["subscriber_id"].to_pylist())), pa.string())
        if len(raw) == 0:
            continue
        got = {}
        for world in ("before", "after"):
            ws = Workspace(run / world / "workspace")
            who = Pseudonymiser(load_key(ws.pseudonym_key)).column(raw).to_pylist()
            req = pa.table({"subscriber_id": np.repeat(who, len(days)), "as_of": pa.array(np.tile(days, len(who)), pa.date32())})
            with ws.session() as engine:
                xm = model.encoder.matrix(build_features(engine, req, feats))
            p, ex = model.proba(xm), model.predict(xm)["expected_score"]
            explainable = float(oracle.predict(xm).mean()) if oracle is not None else np.nan
            truth = pq.read_table(run / world / "operator" / "truth" / "subscriber_daily",
                                  filters=[("date", ">=", days[0] - dt.timedelta(days=1)), ("date", "<=", days[-1] - dt.timedelta(days=1))])
            truth = truth.filter(pc.is_in(truth["subscriber_id"], value_set=raw))
            sat = truth["satisfaction"].to_numpy().astype(float)
            # the last day alone: both the customers and the model's memories take days to follow a fix
            last = pc.equal(req["as_of"], days[-1]).to_numpy(zero_copy_only=False)
            sat_last = sat[pc.equal(truth["date"], days[-1] - dt.timedelta(days=1)).to_numpy(zero_copy_only=False)]
            got[world] = (100 * (p[:, 2].mean() - p[:, 0].mean()), float(ex.mean()), _latent_nps(sat), float(sat.mean()),
                          explainable, float(truth["network_penalty"].to_numpy().astype(float).mean()),
                          100 * (p[last, 2].mean() - p[last, 0].mean()), _latent_nps(sat_last))
        b, a = got["before"], got["after"]
        out.append({"fix": fx["fix_id"], "action": fx["action"], "subscribers": len(raw),
                    "model_nps_change": round(a[0] - b[0], 2), "truth_nps_change": round(a[2] - b[2], 2),
                    "model_nps_change_last_day": round(a[6] - b[6], 2), "truth_nps_change_last_day": round(a[7] - b[7], 2),
                    "model_score_change": round(a[1] - b[1], 3), "truth_satisfaction_change": round(a[3] - b[3], 3),
                    "score_ratio": round((a[1] - b[1]) / (a[3] - b[3]), 3) if abs(a[3] - b[3]) > 0.02 else None,
                    # the ceiling the features set: the oracle's change of the network penalty over the truth's
                    "explainable_ratio": round((a[4] - b[4]) / (a[5] - b[5]), 3) if abs(a[5] - b[5]) > 0.02 else None})
    return out


def within_customers(ws: Workspace, model: NpsModel, feats, until: dt.date) -> dict:
    with ws.session() as engine:
        (first,) = engine.query_row("SELECT min(day) FROM cei_subscriber_day", step="first_day")
        min_day = first + dt.timedelta(days=MIN_HISTORY_DAYS)
        tables = [survey_features(engine, feats, min_day), _answers(engine, "tracker_answers", min_day, feats)]
    rows = []
    last = model.encoder.names.index("last_answer") if "last_answer" in model.encoder.names else None
    for t in tables:
        t = t.filter(pc.less(t["as_of"], pa.scalar(until, pa.date32())))
        xm = model.encoder.matrix(t)
        if last is not None:
            xm[:, last] = np.nan  # the earlier answer is not experience
        rows += zip(t["subscriber_id"].to_pylist(), t["as_of"].to_pylist(), t["score"].to_pylist(), model.predict(xm)["expected_score"])
    rows.sort(key=lambda r: (r[0], r[1]))
    pairs = [(r2[2] - r1[2], r2[3] - r1[3]) for r1, r2 in zip(rows, rows[1:]) if r1[0] == r2[0] and r2[1] > r1[1]]
    if len(pairs) < 30:
        return {"pairs": len(pairs)}
    da, dp = np.array(pairs, float).T
    rng = np.random.default_rng(0)
    boot = [np.polyfit(dp[i], da[i], 1)[0] for i in (rng.choice(len(da), len(da)) for _ in range(500))]
    return {"pairs": len(pairs), "slope": round(float(np.polyfit(dp, da, 1)[0]), 3),
            "slope_90": [round(float(np.quantile(boot, q)), 3) for q in (0.05, 0.95)]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, required=True, help="output folder of `opencem demo` or loop_eval.py")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "nps_sensitivity.jsonl")
    a = ap.parse_args()
    ws = Workspace(a.run / "before" / "workspace")
    manifest = json.loads((a.run / "before" / "operator" / "truth" / "manifest.json").read_text())
    cfg = manifest["config"]
    fix_day = dt.date.fromisoformat(cfg["start"]) + dt.timedelta(days=cfg["fix_day"])
    model, feats = NpsModel.load(ws.model("nps")), feature_list(load_tree())
    oracle, across = cross_section(ws, a.run / "before" / "operator", model, feats, fix_day)
    row = {"subscribers": cfg["subscribers"], "seed": cfg["seed"], "fix_day": str(fix_day), "cross_section": across,
           "realised": realised(a.run, model, feats, fix_day, oracle),
           "within_customers": within_customers(ws, model, feats, fix_day)}
    print(json.dumps(row, indent=1))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with a.out.open("a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
