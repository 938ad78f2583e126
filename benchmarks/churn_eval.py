"""Accuracy of the churn model against the synthetic operator's truth, and IBM Telco's cross-validation.

    python benchmarks/churn_eval.py --train OP_A WS_A --test OP_B WS_B [--test OP_C WS_C ...] [--telco]
        [--out benchmarks/results/churn_eval.jsonl]

Each OP is an `opencem synth` output and WS its `opencem measure` workspace (the commands are in
docs/churn.md). The synthetic generator runs at most 120 days, and no scoring day inside a 120-day window
has its 4 months after it in the data. So the model is trained on one operator (all its days: the
hazard learns months 1-3 from the port-outs the lake shows, month 4 from its month index) and judged on
other operators, which it has never seen, on their first scoring day (day 14): the truth's `churners`
table holds every port-out of a decision made in the window, up to 60 days after it, so the 4 months
after day 14 are known but for decisions made in the 7 days after the window that port out before day
134 (they count as stayers: the figures are, if anything, low). Reported per test operator:

* 4-month ROC-AUC and top-decile lift on day 14 (and 1- and 2-month ones); beside them the truth's own
  hazard on the same subscribers (``oracle_within_4_months``): it knows every customer's latent
  satisfaction, personal baseline included, so it is a ceiling for any model;
* cause accuracy: every true churner who decided on day 14 or later, with the cause the model gave on
  the last scoring day (every 14 days) before their decision, against the truth's driver mapped to the
  model's causes (network_coverage / network_speed / network_voice -> network; price; billing; care;
  other). The truth's `other` is a churner whose penalties were all small (a low personal baseline);
* the training operator's own time-split test (the model card: later scoring days, labels the fit could
  not see), and times.

The truth is read here only, never by the model. Results are appended to the JSONL file.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before LightGBM loads: see tests/conftest.py

import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from opencem.churn.model import MONTH_DAYS, auc_and_lift  # noqa: E402
from opencem.churn.score import score_churn  # noqa: E402
from opencem.churn.train import MIN_HISTORY, train_churn  # noqa: E402
from opencem.ingest.pseudonym import Pseudonymiser, load_key  # noqa: E402
from opencem.workspace import Workspace  # noqa: E402

TRUTH_CAUSE = {"network_coverage": "network", "network_speed": "network", "network_voice": "network",
               "price": "price", "billing": "billing", "care": "care", "other": "other"}
CAUSE_EVERY = 14


def truth_churners(op: Path, ws: Workspace) -> list[dict]:
    t = pq.read_table(op / "truth" / "churners.parquet")
    t = t.set_column(0, "subscriber_id", Pseudonymiser(load_key(ws.pseudonym_key)).column(t["subscriber_id"]))
    return t.to_pylist()


def evaluate(model, op: Path, ws_path: Path, with_explain_days: bool = True) -> dict:
    ws = Workspace(ws_path)
    churners = truth_churners(op, ws)
    t0 = time.perf_counter()
    first = _first_day(ws)
    d0 = first + dt.timedelta(days=MIN_HISTORY)
    res = score_churn(ws.root, d0, model=model, explain_share=1.0, write=False)
    score_s = time.perf_counter() - t0
    ids = res.scores["subscriber_id"].to_pylist()
    pm = np.column_stack([res.scores[f"p_month{k}"].to_numpy() for k in range(1, 5)])
    port = {c["subscriber_id"]: c["portout_date"] for c in churners}
    out = {"scoring_day": str(d0), "score_seconds": round(score_s, 1), "subscribers": len(ids)}
    for m in (1, 2, 4):
        y = np.array([(s in port) and d0 <= port[s] < d0 + dt.timedelta(days=m * MONTH_DAYS) for s in ids])
        out[f"within_{m}_months"] = auc_and_lift(pm[:, :m].sum(axis=1), y)
    y4 = np.array([(s in port) and d0 <= port[s] < d0 + dt.timedelta(days=4 * MONTH_DAYS) for s in ids])
    out["oracle_within_4_months"] = _oracle(op, ws, res.scores, d0, y4)
    # cause of every true churner who decided in the scored span, as given on the last scoring day before
    last = max(c["decision_date"] for c in churners)
    days = [d0 + dt.timedelta(days=CAUSE_EVERY * i) for i in range(20)]
    days = [d for d in days if d <= last]
    cause_on = {}
    for d in days:
        r = score_churn(ws.root, d, model=model, explain_share=1.0, write=False)
        cause_on[d] = dict(zip(r.scores["subscriber_id"].to_pylist(), r.scores["cause"].to_pylist()))
    hits, n, confusion = 0, 0, collections.Counter()
    by_truth = collections.defaultdict(lambda: [0, 0])
    for c in churners:
        before = [d for d in days if d <= c["decision_date"]]
        if not before or c["subscriber_id"] not in cause_on[before[-1]]:
            continue
        got, want = cause_on[before[-1]][c["subscriber_id"]], TRUTH_CAUSE[c["cause"]]
        n += 1
        hits += got == want
        by_truth[c["cause"]][0] += got == want
        by_truth[c["cause"]][1] += 1
        confusion[f"{want}->{got}"] += 1
    out["cause"] = {"churners": n, "right": hits, "accuracy": round(hits / n, 3) if n else None,
                    "by_truth": {k: {"right": v[0], "of": v[1]} for k, v in sorted(by_truth.items())},
                    "confusion": dict(confusion.most_common()), "scoring_days": [str(days[0]), str(days[-1])]}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def _oracle(op: Path, ws: Workspace, scores, d0: dt.date, y4: np.ndarray) -> dict:
    """The same subscribers ranked by the truth's own decision hazard on the day before the scoring day:
    exp(0.9 x (6.5 - latent satisfaction)) x 1.5 under 15 EUR ARPU x 1.4 under 12 months' tenure (synth/behaviour.py).
    It knows each customer's satisfaction, personal baseline included, which no input shows; what it cannot
    know is who of the at-risk draws a decision in the next months. A ceiling for any model."""
    import pyarrow as pa
    import pyarrow.compute as pc

    d = pq.read_table(op / "truth" / "subscriber_daily", filters=[("date", "=", d0 - dt.timedelta(days=1))])
    d = d.set_column(0, "subscriber_id", Pseudonymiser(load_key(ws.pseudonym_key)).column(d["subscriber_id"]))
    sat = dict(zip(d["subscriber_id"].to_pylist(), d["satisfaction"].to_pylist()))
    s = np.array([sat.get(i, np.nan) for i in scores["subscriber_id"].to_pylist()], dtype=float)
    s = np.where(np.isnan(s), np.nanmean(s), s)
    arpu, tenure = scores["arpu_monthly"].to_numpy(), pc.cast(scores["tenure_months"], pa.float64()).to_numpy()
    h = np.exp(0.9 * (6.5 - s)) * np.where(arpu < 15, 1.5, 1.0) * np.where(tenure < 12, 1.4, 1.0)
    return auc_and_lift(h, y4)


def _first_day(ws: Workspace) -> dt.date:
    with ws.session(tables=("cei_subscriber_day",)) as engine:
        return engine.query_row("SELECT min(day) FROM cei_subscriber_day")[0]


def _seed(op: Path) -> int | None:
    return json.loads((op / "truth" / "manifest.json").read_text())["config"]["seed"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", nargs=2, type=Path, metavar=("OP", "WS"), required=True)
    ap.add_argument("--test", nargs=2, type=Path, metavar=("OP", "WS"), action="append", default=[])
    ap.add_argument("--telco", action="store_true", help="also IBM Telco's 5-fold cross-validation")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "churn_eval.jsonl")
    a = ap.parse_args()
    t0 = time.perf_counter()
    model = train_churn(a.train[1], with_nps=False)
    train_s = time.perf_counter() - t0
    base = {"benchmark": "churn_eval", "date": str(dt.date.today()), "train_seed": _seed(a.train[0]),
            "train_seconds": round(train_s, 1), "rounds": model.card["rounds"], "train_window": model.card["training_window"],
            "train_time_split_test": model.card["metrics"]}
    rows = []
    for op, ws in a.test:
        r = {**base, "data": "synthetic", "test_seed": _seed(op), **evaluate(model, op, ws)}
        rows.append(r)
        print(json.dumps({k: r[k] for k in ("train_seed", "test_seed", "within_4_months", "oracle_within_4_months", "cause")},
                         default=str))
    if a.telco:
        from opencem.churn.telco import cross_validate, load_telco

        t1 = time.perf_counter()
        cv = cross_validate(load_telco(Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ibm-telco-customer-churn"))
        rows.append({"benchmark": "churn_eval", "date": str(dt.date.today()), "data": "ibm_telco", **cv,
                     "seconds": round(time.perf_counter() - t1, 1)})
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "per_fold"}))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with a.out.open("a") as f:
        for r in rows:
            f.write(json.dumps(r, default=str) + "\n")


if __name__ == "__main__":
    main()
