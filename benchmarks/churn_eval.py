"""Accuracy of the churn model against the synthetic operator's truth, and IBM Telco's cross-validation.

    python benchmarks/churn_eval.py --within OP WS [--within OP2 WS2 ...] [--test-day D] [--with-nps]
    python benchmarks/churn_eval.py --train OP_A WS_A --test OP_B WS_B [--test OP_C WS_C ...]
    python benchmarks/churn_eval.py ... [--telco] [--out benchmarks/results/churn_eval.jsonl]

Each OP is an `opencem synth` output and WS its `opencem measure` workspace (the commands are in
docs/churn.md). Two designs:

* ``--within``: one operator long enough for a 4-month horizon (250 days, say). The model is trained
  with ``train_churn(until=D)``, on the port-outs known before the test day D (default: the last day with
  4 months of data after it), and judged on D and the 4 months after it. With ``--with-nps`` the
  workspace's NPS model (train it with ``opencem train nps --until D``) is a feature. With
  ``--surveys-only`` it runs on a copy of the workspace without the tracker's answers.
* ``--train`` / ``--test``: trained on one operator's whole window (the hazard learns months 1-3 from the
  port-outs the lake shows, month 4 from its month index) and judged on other operators, which it has
  never seen, on their first scoring day (day 14). This was the only design while the generator ran at
  most 120 days: the 4 months after day 14 are known but for decisions made in the 7 days after a
  120-day window that port out before day 134 (they count as stayers).

Reported per judged operator:

* 4-month ROC-AUC and top-decile lift on the scoring day (and 1- and 2-month ones); beside them the truth's own
  hazard on the same subscribers (``oracle_within_4_months``): it knows every customer's latent
  satisfaction, personal baseline included, so it is a ceiling for any model;
* cause accuracy: every true churner who decided on the scoring day or later, with the cause the model gave on
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
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before LightGBM loads: see tests/conftest.py

import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from opencem.churn.features import NPS  # noqa: E402
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


def evaluate(model, op: Path, ws_path: Path, d0: dt.date | None = None) -> dict:
    """The model judged on one operator's scoring day ``d0`` (default: its first) and the 4 months after it."""
    ws = Workspace(ws_path)
    churners = truth_churners(op, ws)
    t0 = time.perf_counter()
    d0 = d0 or _first_day(ws) + dt.timedelta(days=MIN_HISTORY)
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
    pen = pq.read_table(op / "truth" / "subscriber_daily", columns=["network_penalty", "nonnetwork_penalty"],
                        filters=[("date", "=", d0 - dt.timedelta(days=1))])
    net, non = pen["network_penalty"].to_numpy(), pen["nonnetwork_penalty"].to_numpy()
    out["base_share_network_penalty_over_0_6"] = round(float(np.mean((net > 0.6) & (net > non))), 3)
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
    # what naming every churner "network" would score: the truth's driver is absolute (the largest penalty
    # over 0.6 satisfaction points), which most customers' everyday network experience exceeds
    as_network = sum(v for k, v in confusion.items() if k.startswith("network->"))
    out["cause"] = {"churners": n, "right": hits, "accuracy": round(hits / n, 3) if n else None,
                    "constant_network_accuracy": round(as_network / n, 3) if n else None,
                    "by_truth": {k: {"right": v[0], "of": v[1]} for k, v in sorted(by_truth.items())},
                    "confusion": dict(confusion.most_common()), "scoring_days": [str(days[0]), str(days[-1])]}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def _oracle(op: Path, ws: Workspace, scores, d0: dt.date, y4: np.ndarray) -> dict:
    """The same subscribers ranked by the truth's own decision hazard on the day before the scoring day
    (synth/behaviour.py): exp(0.9 x (6.5 - long-run satisfaction)) x 1.5 under 15 EUR ARPU x 1.4 under 12
    months' tenure x 0.6 on the sixth plan, where the long-run satisfaction is the truth's daily latent
    satisfaction smoothed by 0.95 a day. Its start (personal baseline - 1, not in the truth) is taken as the
    first day's satisfaction - 1: a weight of 0.95^days on it (0.49 on day 14, 0.001 on day 130).
    It knows each customer's satisfaction, personal baseline included, which no input shows; what it cannot
    know is who of the at-risk draws a decision in the next months. A ceiling for any model."""
    from opencem.synth.population import PLANS

    pseud = Pseudonymiser(load_key(ws.pseudonym_key))
    d = pq.read_table(op / "truth" / "subscriber_daily", columns=["subscriber_id", "date", "satisfaction"],
                      filters=[("date", "<", d0)]).sort_by("date")
    known, row = np.unique(pseud.column(d["subscriber_id"]).to_numpy(zero_copy_only=False), return_inverse=True)
    sat, date = d["satisfaction"].to_numpy().astype(float), d["date"].to_numpy()
    sat_long = np.full(len(known), np.nan)
    for day in np.unique(date):  # the smoothing is recursive: one step a day, every subscriber at once
        at = date == day
        r, s = row[at], sat[at]
        prev = sat_long[r]
        sat_long[r] = np.where(np.isnan(prev), s - 1.0, 0.95 * prev + 0.05 * s)
    sub = pq.read_table(op / "inputs" / "subscribers.parquet", columns=["subscriber_id", "plan", "arpu_monthly", "tenure_months"])
    profile = dict(zip(pseud.column(sub["subscriber_id"]).to_pylist(),
                       zip(sub["plan"].to_pylist(), sub["arpu_monthly"].to_pylist(), sub["tenure_months"].to_pylist())))
    ids = scores["subscriber_id"].to_pylist()
    at = np.searchsorted(known, ids).clip(0, len(known) - 1)
    s = np.where(known[at] == np.array(ids, dtype=object), sat_long[at], np.nan)
    s = np.where(np.isnan(s), np.nanmean(s), s)
    plan, arpu, tenure = (np.array(v) for v in zip(*(profile[i] for i in ids)))
    h = np.exp(0.9 * (6.5 - s)) * np.where(arpu < 15, 1.5, 1.0) * np.where(tenure < 12, 1.4, 1.0) * np.where(plan == PLANS[5], 0.6, 1.0)
    return auc_and_lift(h, y4)


def _first_day(ws: Workspace) -> dt.date:
    return _days(ws)[0]


def _days(ws: Workspace) -> tuple[dt.date, dt.date]:
    with ws.session(tables=("cei_subscriber_day",)) as engine:
        return engine.query_row("SELECT min(day), max(day) FROM cei_subscriber_day")


def surveys_only(ws_path: Path, dst: Path) -> Path:
    """A copy of the workspace whose lake has no tracker answers: the customers' earlier answers are then the
    transactional surveys only, as at an operator whose tracker reaches a fraction of a percent of the base.
    Lake and measure files are hard links (never written); the models are left out."""
    def link_parquet(src, to):
        if src.endswith(".parquet"):
            os.link(src, to)
        else:
            shutil.copy2(src, to)  # the catalog and other small files: DuckDB may write them

    shutil.copytree(ws_path, dst, copy_function=link_parquet, ignore=lambda d, names: ["models"] if Path(d) == ws_path else [])
    for f in (dst / "lake" / "nps_tracker").rglob("*.parquet"):
        empty = pq.read_table(f).slice(0, 0)
        f.unlink()
        pq.write_table(empty, f)
    return dst


def within(op: Path, ws_path: Path, test_day: dt.date | None, with_nps: bool) -> dict:
    """One long operator: trained on the labels knowable before its test day, judged on the 4 months after it."""
    first, last = _days(Workspace(ws_path))
    d0 = test_day or last + dt.timedelta(days=1 - 4 * MONTH_DAYS)
    if d0 + dt.timedelta(days=4 * MONTH_DAYS) > last + dt.timedelta(days=1):
        raise SystemExit(f"{ws_path}: data {first} .. {last}; test day {d0} has not 4 months of data after it")
    t0 = time.perf_counter()
    model = train_churn(ws_path, until=d0, with_nps=with_nps)
    base = {"benchmark": "churn_eval", "mode": "within", "date": str(dt.date.today()), "train_seed": _seed(op),
            "test_seed": _seed(op), "data": "synthetic", "with_nps": NPS in model.nodes.values(), "train_seconds": round(time.perf_counter() - t0, 1),
            "rounds": model.card["rounds"], "train_window": model.card["training_window"],
            "train_time_split_test": model.card["metrics"]}
    return {**base, **evaluate(model, op, ws_path, d0)}


def _seed(op: Path) -> int | None:
    return json.loads((op / "truth" / "manifest.json").read_text())["config"]["seed"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", nargs=2, type=Path, metavar=("OP", "WS"))
    ap.add_argument("--test", nargs=2, type=Path, metavar=("OP", "WS"), action="append", default=[])
    ap.add_argument("--within", nargs=2, type=Path, metavar=("OP", "WS"), action="append", default=[],
                    help="a long operator judged on itself: trained on what was known before its test day")
    ap.add_argument("--test-day", type=dt.date.fromisoformat, help="with --within (default: the last day with 4 months after it)")
    ap.add_argument("--with-nps", action="store_true", help="with --within: the workspace's NPS model as a feature, when it has one")
    ap.add_argument("--surveys-only", action="store_true",
                    help="with --within: on a copy of the workspace without the tracker's answers (no NPS model)")
    ap.add_argument("--telco", action="store_true", help="also IBM Telco's 5-fold cross-validation")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "churn_eval.jsonl")
    a = ap.parse_args()
    if a.test and not a.train:
        ap.error("--test needs --train")
    rows = []
    if a.train:
        t0 = time.perf_counter()
        model = train_churn(a.train[1], with_nps=False)
        base = {"benchmark": "churn_eval", "date": str(dt.date.today()), "train_seed": _seed(a.train[0]),
                "train_seconds": round(time.perf_counter() - t0, 1), "rounds": model.card["rounds"],
                "train_window": model.card["training_window"], "train_time_split_test": model.card["metrics"]}
        rows += [{**base, "data": "synthetic", "test_seed": _seed(op), **evaluate(model, op, ws)} for op, ws in a.test]
    for op, ws in a.within:
        if a.surveys_only:
            with tempfile.TemporaryDirectory(dir=ws.parent) as tmp:
                rows.append({**within(op, surveys_only(ws, Path(tmp) / ws.name), a.test_day, False),
                             "answers": "surveys only: the workspace copy's lake nps_tracker emptied"})
        else:
            rows.append(within(op, ws, a.test_day, a.with_nps))
    for r in rows:
        print(json.dumps({k: r[k] for k in ("train_seed", "test_seed", "scoring_day", "within_4_months", "oracle_within_4_months", "cause")},
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
