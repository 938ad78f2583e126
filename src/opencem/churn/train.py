"""`opencem train churn`: fit the port-out hazard on a workspace's scoring days, in time order.

Scoring days run every :data:`EVERY` days from :data:`MIN_HISTORY` days into the data until the last day
whose first month is over. Each (subscriber, day) has its features as of that day and, as labels, the
month of its port-out and how many months after the day are over (known port-outs end the day before the
cutoff). The split is by scoring day and by what was knowable then:

- **test**: the latest :data:`TEST_SHARE` of the scoring days, judged on the months after them that are
  over by the cutoff;
- **fit**: the earlier days, with only the months that were over by the first test day: no label of a fit
  row was unknown on the test days. The boosting rounds are chosen by 5-fold cross-validation on the fit
  rows, each subscriber in one fold (port-outs are rare: one small held-out set chooses by chance).

The model that scores is then refit on every month of every day that is over by the cutoff (its rounds
chosen the same way on those rows): the latest months are the only ones that have seen the latest events.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from .. import __version__
from ..engine.pipeline import sql_file
from ..errors import InputError
from ..indicators.tree import load_tree
from ..nps.features import base_requests
from ..nps.model import NpsModel, fingerprint
from ..workspace import Workspace
from .features import build, churn_features, scoring_days
from .model import HORIZON_MONTHS, MONTH_DAYS, ChurnModel, auc_and_lift, choose_rounds, encoder_for, fit_hazard, person_periods

MIN_HISTORY = 14  # days of data before the first scoring day
EVERY = 7  # days between scoring days
TEST_SHARE = 0.3


def use_nps(ws: Workspace, feature_names: list[str]) -> NpsModel | None:
    """The workspace's NPS model when there is one trained on the current NPS features."""
    if not (ws.model("nps") / "state.json").is_file():
        return None
    m = NpsModel.load(ws.model("nps"))
    return m if all(n in feature_names for n in m.encoder.names) else None


def dataset(workspace: Path, cutoff: dt.date | None = None, every: int = EVERY, min_history: int = MIN_HISTORY,
            with_nps: bool = True, say: Callable[[str], None] = lambda _m: None) -> tuple[pa.Table, list, dt.date, tuple]:
    """Every (subscriber, scoring day) with its features and labels (``observed_months``, ``event_month``);
    only data before ``cutoff`` (default: the day after the last data) is read as labels."""
    ws = Workspace(workspace)
    tree = load_tree()
    nps_model = use_nps(ws, [f.name for f in churn_features(tree)]) if with_nps else None
    feats = churn_features(tree, with_nps=nps_model is not None)
    with ws.session() as engine:
        first, last = engine.query_row(sql_file("opencem.nps", "measured_days"), step="measured_days")
        if first is None:
            raise InputError(f"{ws.measure / 'cei_subscriber_day'}: no measured days")
        cutoff = min(cutoff, last + dt.timedelta(days=1)) if cutoff else last + dt.timedelta(days=1)
        days = scoring_days(first, cutoff, min_history, every)
        if len(days) < 2:
            raise InputError(f"{ws.root}: data from {first} to {last}; churn training needs at least {min_history + MONTH_DAYS + every} "
                             "days before the cutoff (two scoring days with a month after each)")
        say(f"features of the base on {len(days)} scoring days, {days[0]} .. {days[-1]}")
        req = pa.concat_tables([base_requests(engine, d) for d in days])
        x = build(engine, req, tree, nps_model)
        lab = engine.query_arrow(sql_file("opencem.churn", "labels"), {
            "months": HORIZON_MONTHS, "month_days": MONTH_DAYS, "observed_until": cutoff}, step="labels")
    for c in ("observed_months", "event_month"):
        x = x.append_column(c, lab[c])
    return x, feats, cutoff, (first, last)


def train_churn(workspace: Path, until: dt.date | None = None, every: int = EVERY, min_history: int = MIN_HISTORY,
                with_nps: bool = True, progress: Callable[[str], None] | None = None) -> ChurnModel:
    """Fit, judge and refit the hazard; ``until``: only labels knowable before that day."""
    say = progress or (lambda _msg: None)
    data, feats, cutoff, (first, last) = dataset(workspace, until, every, min_history, with_nps, say)
    names = [f.name for f in feats]
    enc = encoder_for(data, names)
    x = enc.matrix(data)
    day = np.array(data["as_of"].to_pylist(), dtype="datetime64[D]")
    observed = data["observed_months"].to_numpy()
    event = data["event_month"].to_numpy()
    days = np.unique(day)
    # the first test day: the latest TEST_SHARE of the days, and late enough for the first fit day's month to be over
    t_test = max(days[min(len(days) - 1, max(1, int(np.floor(len(days) * (1 - TEST_SHARE)))))],
                 days[0] + np.timedelta64(MONTH_DAYS, "D"))
    t_test = days[days >= t_test][0] if (days >= t_test).any() else None
    if t_test is None:
        raise InputError(f"{Workspace(workspace).root}: scoring days {days[0]} .. {days[-1]}; a time split needs a test day at least "
                         f"{MONTH_DAYS} days after the first (about {min_history + 2 * MONTH_DAYS + 1} days of data or more)")
    fit, test = day < t_test, day >= t_test
    # a fit row keeps only the months over by the first test day; a port-out after them is unknown there
    obs_fit = np.minimum(observed, np.maximum(0, (t_test - day).astype(int) // MONTH_DAYS))
    ev_fit = np.where((event > 0) & (event <= obs_fit), event, 0)
    group = _hash(data["subscriber_id"].to_pylist())
    xf, yf, who = person_periods(x[fit], obs_fit[fit], ev_fit[fit])
    say(f"hazard on {len(yf):,} person-months ({int(yf.sum())} port-outs); rounds by 5-fold cross-validation by subscriber")
    monotone = [f.direction for f in feats]
    rounds = choose_rounds(xf, yf, group[fit][who], enc.categorical, monotone=monotone)
    held = fit_hazard(xf, yf, None, None, enc.categorical, rounds=rounds, monotone=monotone)
    nodes, kinds = {f.name: f.node for f in feats}, {f.name: f.kind for f in feats}
    judged = ChurnModel(enc, held, nodes, kinds)
    metrics = _test_metrics(judged, x[test], observed[test], event[test])

    xa, ya, who_a = person_periods(x, observed, event)
    say(f"refit on every observed month: {len(ya):,} person-months ({int(ya.sum())} port-outs), rounds by cross-validation")
    rounds_all = choose_rounds(xa, ya, group[who_a], enc.categorical, monotone=monotone)
    booster = fit_hazard(xa, ya, None, None, enc.categorical, rounds=rounds_all, monotone=monotone)
    model = ChurnModel(enc, booster, nodes, kinds)
    gain = booster.feature_importance("gain")
    top = sorted(zip([*names, "month"], gain), key=lambda t: -t[1])[:15]
    model.card = {
        "model": "opencem churn (discrete-time port-out hazard)", "opencem_version": __version__,
        "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "data": {"workspace": Workspace(workspace).root.name, "days": [str(first), str(last)], "labels_known_before": str(cutoff),
                 "fingerprint": fingerprint(data.select(["subscriber_id", "as_of", "observed_months", "event_month"]))},
        "horizon": {"months": HORIZON_MONTHS, "month_days": MONTH_DAYS,
                    "outputs": "hazard per month, P(port-out in month k) = h_k prod_{j<k}(1 - h_j), p_4m = 1 - prod(1 - h_k)"},
        "training_window": {"scoring_days": [str(days[0]), str(days[-1])], "every_days": every, "min_history_days": min_history,
                            "fit_days": [str(days[0]), str(day[fit].max())], "test_days": [str(t_test), str(days[-1])],
                            "fit_person_months": int(len(yf)), "fit_portouts": int(yf.sum()),
                            "refit_person_months": int(len(ya)), "refit_portouts": int(ya.sum())},
        "rounds": rounds_all, "rounds_of_the_judged_fit": rounds, "params": {k: v for k, v in booster.params.items()
                                     if k in ("learning_rate", "num_leaves", "min_data_in_leaf", "lambda_l2", "seed")},
        "features": [{"name": f.name, "node": f.node, "kind": f.kind, "direction": f.direction, "meaning": f.meaning} for f in feats],
        "metrics": metrics,
        "top_features_by_gain": [{"name": n, "gain": round(float(g), 1)} for n, g in top],
    }
    return model


def _test_metrics(model: ChurnModel, x: np.ndarray, observed: np.ndarray, event: np.ndarray) -> dict:
    """ROC-AUC and top-decile lift on the test days: for each horizon of m months, the subscribers whose m
    months are over, by P(port-out within m months)."""
    pm = model.predict(x)["p_month"]
    out = {}
    for m in range(1, HORIZON_MONTHS + 1):
        ok = observed >= m
        if ok.sum() == 0:
            continue
        p = pm[ok, :m].sum(axis=1)
        y = (event[ok] > 0) & (event[ok] <= m)
        out[f"within_{m}_months"] = auc_and_lift(p, y)
    return out


def _hash(ids: list[str]) -> np.ndarray:
    """A stable number per id (the same subscriber on every day, in every run)."""
    return np.array([int(hashlib.sha256(s.encode()).hexdigest()[:8], 16) for s in ids], dtype=np.int64)
