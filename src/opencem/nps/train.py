"""`opencem train nps`: fit the NPS model on a workspace's survey answers, in time order.

Answers are split by answer day: the earliest 60 % fit the boosters, the next 20 % stop the boosting
and fit the calibration, the latest 20 % only measure. Answers from the first days of the data, when
the experience history is shorter than :data:`MIN_HISTORY_DAYS`, are left out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import __version__
from ..engine import Engine
from ..engine.pipeline import sql_file
from ..indicators.tree import load_tree
from ..workspace import Workspace
from .features import WINDOW_DAYS, base_requests, build_features, feature_list
from .model import Encoder, NpsModel, anchor_tilt, answer_class, fingerprint, fit_boosters, fit_calibration, metrics

MIN_HISTORY_DAYS = 7
SPLIT = (0.6, 0.8)
MIN_ANSWERS = 300


def survey_features(engine: Engine, feats, min_day: dt.date) -> pa.Table:
    """Each usable survey answer with the features of its subscriber as of the answer day."""
    engine.create_table("answers", sql_file("opencem.nps", "answers"), {"min_day": min_day})
    x = build_features(engine, engine.table_arrow("answers").select(["subscriber_id", "as_of"]), feats)
    engine.register_arrow("answer_features", x)
    out = engine.query_arrow(sql_file("opencem.nps", "survey_features"), step="survey_features")
    engine.drop("answer_features")
    return out


def train_nps(workspace: Path, tree_path: Path | None = None, anchor: list[tuple[dt.date, float]] | None = None,
              progress: Callable[[str], None] | None = None, until: dt.date | None = None) -> NpsModel:
    """Fit, calibrate and judge the model; ``anchor`` = [(day, base NPS of a representative study that day)];
    ``until``: only answers before that day (a model that has not seen what came after)."""
    say = progress or (lambda _msg: None)
    ws = Workspace(workspace)
    tree = load_tree(tree_path)
    feats = feature_list(tree)
    names = [f.name for f in feats]
    with ws.session() as engine:
        first, last = engine.query_row(sql_file("opencem.nps", "measured_days"), step="measured_days")
        say("features of every survey answer")
        data = survey_features(engine, feats, first + dt.timedelta(days=MIN_HISTORY_DAYS))
    if until is not None:
        data = data.filter(pc.less(data["as_of"], pa.scalar(until, pa.date32())))
    if data.num_rows < MIN_ANSWERS:
        raise ValueError(f"{ws.lake / 'surveys'}: {data.num_rows} usable survey answers after day "
                         f"{MIN_HISTORY_DAYS}; the model needs at least {MIN_ANSWERS}")
    days = np.array(data["as_of"].to_pylist())
    dnum = days.astype("datetime64[D]").astype(int)
    cut1, cut2 = (np.quantile(dnum, q) for q in SPLIT)
    part = np.where(dnum <= cut1, 0, np.where(dnum <= cut2, 1, 2))
    if not all((part == k).sum() >= 50 for k in range(3)):
        counts = "/".join(str(int((part == k).sum())) for k in range(3))
        raise ValueError(f"{ws.lake / 'surveys'}: the time split gives {counts} answers for fit / validation / test; "
                         "each needs at least 50 (more answers or more answer days)")
    enc = Encoder.fit(data, names)
    x = enc.matrix(data)
    score = data["score"].to_numpy().astype(float)
    y = answer_class(score)
    fit, val, test = (part == 0), (part == 1), (part == 2)

    say(f"LightGBM on {fit.sum():,} answers, early stopping on {val.sum():,}")
    clf, reg = fit_boosters(x[fit], y[fit], score[fit], x[val], y[val], score[val], enc.categorical)
    calib = fit_calibration(clf.predict(x[val]), y[val])
    model = NpsModel(enc, clf, reg, calib)

    if anchor:
        say(f"anchoring to {len(anchor)} representative studies")
        with ws.session() as engine:
            set_anchor(model, engine, feats, anchor)

    say("scoring the later answers")
    res = {}
    for label, mask in (("validation", val), ("test", test)):
        pr = NpsModel(enc, clf, reg, calib).proba(x[mask])  # respondents' level, as the answers are
        res[label] = metrics(pr, y[mask], reg.predict(x[mask]), score[mask])

    fi = clf.feature_importance("gain")
    top = sorted(zip(names, fi), key=lambda t: -t[1])[:15]
    model.card = {
        "model": "opencem network NPS", "opencem_version": __version__, "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "data": {"workspace": ws.root.name, "days": [str(first), str(last)], "fingerprint": fingerprint(
            data.select(["survey_id", "subscriber_id", "as_of", "score"]))},
        "training_window": {"fit": _span(days[fit]), "validation": _span(days[val]), "test": _span(days[test]),
                            "answers": {"fit": int(fit.sum()), "validation": int(val.sum()), "test": int(test.sum())},
                            "min_history_days": MIN_HISTORY_DAYS},
        "features": [{"name": f.name, "node": f.node, "kind": f.kind, "meaning": f.meaning} for f in feats],
        "feature_window_days": WINDOW_DAYS,
        "classes": {"detractor": "0-6", "passive": "7-8", "promoter": "9-10"},
        "boosters": {"classifier_rounds": clf.best_iteration, "regressor_rounds": reg.best_iteration, "params": {
            k: v for k, v in clf.params.items() if k in ("learning_rate", "num_leaves", "min_data_in_leaf", "lambda_l2")}},
        "anchor": {"waves": {str(d): v for d, v in anchor}, "tilt": round(model.tilt, 4)} if anchor else None,
        "metrics_on_respondents": res,
        "top_features_by_gain": [{"name": n, "gain": round(float(g), 1)} for n, g in top],
    }
    return model


ANCHOR_SAMPLE = 50_000


def set_anchor(model: NpsModel, engine: Engine, feats, waves: list[tuple[dt.date, float]]) -> None:
    """Shift the model so that the base (sampled down to about :data:`ANCHOR_SAMPLE`) scores the studies' NPS."""
    (n,) = engine.query_row("SELECT count(*) FROM subscribers", step="subscribers")
    model.tilt = 0.0
    probs = []
    for day, nps in waves:
        x = build_features(engine, base_requests(engine, day, max(1, n // ANCHOR_SAMPLE)), feats)
        if x.num_rows == 0:
            raise ValueError(f"--anchor {day}: no subscribers with data on that day")
        probs.append((model.proba(model.encoder.matrix(x)), nps))
    model.tilt = anchor_tilt(probs)


def _span(days: np.ndarray) -> list[str]:
    return [str(days.min()), str(days.max())]
