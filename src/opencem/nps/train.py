"""`opencem train nps`: fit the NPS model on a workspace's survey answers, in time order.

Answers are split by answer day: the earliest 60 % fit the latent score, the next 20 % stop the boosting
and fit the ordinal link, the latest 20 % only measure. Answers from the first days of the data, when the
experience history is shorter than :data:`MIN_HISTORY_DAYS`, are left out.

When the workspace has survey invitations, each answer is weighted by the inverse of its answerer's
estimated response propensity; when it has a representative study (``nps_tracker``), the level is the
study's. Both are used automatically, and the model card says which level correction was used.
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
from ..errors import InputError
from ..indicators.tree import load_tree
from ..workspace import Workspace
from .features import WINDOW_DAYS, base_requests, build_features, feature_list
from .model import (
    LEVELS,
    PARAMS,
    Encoder,
    NpsModel,
    OrdinalLink,
    Replica,
    answer_class,
    fingerprint,
    fit_propensity,
    fit_regressor,
    metrics,
)

MIN_HISTORY_DAYS = 7
SPLIT = (0.6, 0.8)
MIN_ANSWERS = 300
MIN_TRACKER_ANSWERS = 100  # fewer representative answers than this do not set the level
MIN_INVITATIONS = 200  # fewer invitations than this do not fit a response propensity
WEIGHT_CLIP = (0.2, 5.0)  # inverse-propensity weights are kept in this range (relative to the mean)
REPLICAS = 10  # bootstrap refits behind the intervals
BOOTSTRAP_SEED = 23
ANCHOR_SAMPLE = 50_000


def with_features(engine: Engine, rows: pa.Table, feats) -> pa.Table:
    """``rows`` (with ``subscriber_id`` and ``as_of``) joined to the subscriber's features as of that day."""
    x = build_features(engine, rows.select(["subscriber_id", "as_of"]), feats)
    engine.register_arrow("rows_in", rows.append_column("_row", pa.array(np.arange(rows.num_rows))))
    engine.register_arrow("rows_features", x)
    out = engine.query_arrow(sql_file("opencem.nps", "with_features"), step="with_features")
    engine.drop("rows_in")
    engine.drop("rows_features")
    return out


def _answers(engine: Engine, name: str, min_day: dt.date, feats) -> pa.Table:
    return with_features(engine, engine.query_arrow(sql_file("opencem.nps", name), {"min_day": min_day}, step=name), feats)


def survey_features(engine: Engine, feats, min_day: dt.date) -> pa.Table:
    """Each usable survey answer with the features of its subscriber as of the answer day, in answer order."""
    return _answers(engine, "answers", min_day, feats)


def train_nps(workspace: Path, tree_path: Path | None = None, anchor: list[tuple[dt.date, float]] | None = None,
              progress: Callable[[str], None] | None = None, until: dt.date | None = None,
              replicas: int = REPLICAS) -> NpsModel:
    """Fit, calibrate and judge the model; ``anchor`` = [(day, base NPS of a representative study that day)]
    overrides the tracker; ``until``: only answers before that day (a model that has not seen what came after)."""
    say = progress or (lambda _msg: None)
    ws = Workspace(workspace)
    tree = load_tree(tree_path)
    feats = feature_list(tree)
    names = [f.name for f in feats]
    with ws.session() as engine:
        first, last = engine.query_row(sql_file("opencem.nps", "measured_days"), step="measured_days")
        min_day = first + dt.timedelta(days=MIN_HISTORY_DAYS)
        say("features of every survey answer, tracker answer and invitation")
        data = survey_features(engine, feats, min_day)
        tracker = _answers(engine, "tracker_answers", min_day, feats)
        invites = _answers(engine, "invitations", min_day, feats)
    if until is not None:
        data, tracker, invites = (t.filter(pc.less(t["as_of"], pa.scalar(until, pa.date32()))) for t in (data, tracker, invites))
    if data.num_rows < MIN_ANSWERS:
        raise InputError(f"{ws.lake / 'surveys'}: {data.num_rows} usable survey answers after day "
                         f"{MIN_HISTORY_DAYS}; the model needs at least {MIN_ANSWERS}")
    days = np.array(data["as_of"].to_pylist())
    dnum = days.astype("datetime64[D]").astype(int)
    cut1, cut2 = (np.quantile(dnum, q) for q in SPLIT)
    part = np.where(dnum <= cut1, 0, np.where(dnum <= cut2, 1, 2))
    if not all((part == k).sum() >= 50 for k in range(3)):
        counts = "/".join(str(int((part == k).sum())) for k in range(3))
        raise InputError(f"{ws.lake / 'surveys'}: the time split gives {counts} answers for fit / validation / test; "
                         "each needs at least 50 (more answers or more answer days)")
    enc = Encoder.fit(data, names)
    monotone = [f.direction for f in feats]
    x = enc.matrix(data)
    score = data["score"].to_numpy().astype(float)
    y = answer_class(score)
    fit, val, test = (part == 0), (part == 1), (part == 2)

    weight, propensity = _response_weights(enc, data, invites)
    # the tracker's answers are answers too (and nobody chose to give them): those of the fit days join the fit
    x_tr, s_tr = enc.matrix(tracker), tracker["score"].to_numpy().astype(float)
    y_tr = answer_class(s_tr)
    tr_fit = np.array(tracker["as_of"].to_pylist(), dtype="datetime64[D]").astype(int) <= cut1
    x_fit, s_fit, w_fit = np.vstack([x[fit], x_tr[tr_fit]]), np.r_[score[fit], s_tr[tr_fit]], np.r_[weight[fit], np.ones(tr_fit.sum())]
    say(f"monotone LightGBM on {len(s_fit):,} answers, early stopping on {val.sum():,}")
    held = fit_regressor(x_fit, s_fit, w_fit, x[val], score[val], weight[val], enc.categorical, monotone)
    rounds = max(held.best_iteration, 1)
    link = OrdinalLink.fit(held.predict(x[val]), y[val], weight[val])

    def refit(answers: np.ndarray, tracked: np.ndarray, seed: int = PARAMS["seed"]):
        """The latent score with the rounds chosen above, on the given survey and tracker answers."""
        return fit_regressor(np.vstack([x[answers], x_tr[tracked]]), np.r_[score[answers], s_tr[tracked]],
                             np.r_[weight[answers], np.ones(len(tracked))], None, None, None, enc.categorical, monotone,
                             rounds=rounds, seed=seed)

    # the model that scores is refit on every answer with the rounds and link chosen above: the latest
    # answers are the ones that have seen the latest events (a price change), and none is wasted
    every, n_tr = np.arange(len(score)), len(s_tr)
    say(f"refit on all {len(score) + n_tr:,} answers, {rounds} rounds")
    reg = refit(every, np.arange(n_tr))
    model = NpsModel(enc, reg, link)

    # the level is read on tracker answers the reading model was not fit on (one that has seen an answer
    # predicts it too well, and would understate the shift): two halves, each scored by a refit on the
    # other. A refit on half the tracker sits lower than the full model (the tracker pulls the fit up);
    # their gap on the base, which neither has seen, carries its shift over to the full model.
    half = np.random.default_rng(BOOTSTRAP_SEED).permutation(n_tr) % 2
    waves = _base_samples(ws, enc, feats, anchor) if anchor else None
    level = "anchor" if anchor else "tracker" if n_tr >= MIN_TRACKER_ANSWERS else "respondents"
    if level == "anchor":
        model.shift = _shift(level, link, reg, waves)
    elif level == "tracker":
        wave = np.sort(np.array(tracker["as_of"].to_pylist(), dtype="datetime64[D]"))
        ((base, _),) = _base_samples(ws, enc, feats, [(wave[len(wave) // 2].item(), None)])
        held_out, gap = np.empty(n_tr), 0.0
        for k in (0, 1):
            reg_k = refit(every, np.flatnonzero(half != k))
            held_out[half == k] = reg_k.predict(x_tr[half == k])
            gap += float(np.mean(reg.predict(base) - reg_k.predict(base))) / 2
        model.shift = link.shift_for(held_out, y_tr) - gap
    model.level = level
    say(f"level: {LEVELS[model.level]}")

    say(f"{replicas} bootstrap refits for the intervals")
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    for i in range(replicas):
        # a refit on a resample of the survey answers and of one half of the tracker; its link is fit on the
        # survey answers it did not draw and its level on a resample of the other half
        drawn = rng.choice(len(score), len(score))
        own, other = np.flatnonzero(half == i % 2), np.flatnonzero(half != i % 2)
        reg_i = refit(drawn, rng.choice(own, len(own)), seed=1000 + i)
        oob = np.setdiff1d(every, drawn)
        link_i = OrdinalLink.fit(reg_i.predict(x[oob]), y[oob], weight[oob])
        j = np.random.default_rng([BOOTSTRAP_SEED, i]).choice(other, len(other))
        model.replicas.append(Replica(reg_i, link_i, _shift(level, link_i, reg_i, waves, x_tr[j], y_tr[j])))

    say("scoring the later answers")
    res = {}
    for label, mask in (("validation", val), ("test", test)):
        s = held.predict(x[mask])  # the model before its refit, which has not seen these answers
        res[label] = metrics(link.proba(s), y[mask], np.clip(s, 0, 10), score[mask])

    fi = reg.feature_importance("gain")
    top = sorted(zip(names, fi), key=lambda t: -t[1])[:15]
    model.card = {
        "model": "opencem network NPS", "opencem_version": __version__, "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "data": {"workspace": ws.root.name, "days": [str(first), str(last)], "fingerprint": fingerprint(
            data.select(["survey_id", "subscriber_id", "as_of", "score"]))},
        "training_window": {"fit": _span(days[fit]), "validation": _span(days[val]), "test": _span(days[test]),
                            "answers": {"fit": int(fit.sum()), "fit_tracker": int(tr_fit.sum()), "validation": int(val.sum()),
                                        "test": int(test.sum())},
                            "min_history_days": MIN_HISTORY_DAYS},
        "features": [{"name": f.name, "node": f.node, "kind": f.kind, "direction": f.direction, "meaning": f.meaning}
                     for f in feats],
        "feature_window_days": WINDOW_DAYS,
        "classes": {"detractor": "0-6", "passive": "7-8", "promoter": "9-10"},
        "latent_score": {"rounds": rounds, "refit_on_answers": len(score) + n_tr, "monotone_features": int(sum(m != 0 for m in monotone)), "params": {
            k: v for k, v in reg.params.items() if k in ("learning_rate", "num_leaves", "min_data_in_leaf", "lambda_l2")}},
        "ordinal_link": link.to_dict(),
        "response_weighting": propensity,
        "level": {"correction": model.level, "meaning": LEVELS[model.level], "shift": round(model.shift, 4),
                  "tracker_answers": n_tr, "anchor": {str(d): v for d, v in anchor} if anchor else None},
        "replicas": replicas,
        "metrics_on_respondents": res,
        "top_features_by_gain": [{"name": n, "gain": round(float(g), 1)} for n, g in top],
    }
    return model



def _response_weights(enc: Encoder, data: pa.Table, invites: pa.Table) -> tuple[np.ndarray, dict]:
    """Per answer, the inverse of its answerer's estimated response propensity (1 without invitations)."""
    answered = invites["answered"].to_numpy(zero_copy_only=False).astype(bool) if invites.num_rows else np.array([], bool)
    if invites.num_rows < MIN_INVITATIONS or answered.all() or not answered.any():
        return np.ones(data.num_rows), {"used": False, "reason": f"{invites.num_rows} invitations (needs {MIN_INVITATIONS} with and without an answer)"}
    xi = _with_trigger(enc.matrix(invites), invites)
    model = fit_propensity(xi, answered, enc.categorical)
    p = model.predict(xi)
    by_survey = dict(zip(invites["survey_id"].to_pylist(), p))
    p_answer = np.array([by_survey.get(s, np.nan) for s in data["survey_id"].to_pylist()])
    p_answer = np.where(np.isnan(p_answer), np.nanmean(p_answer) if np.isfinite(p_answer).any() else 1.0, p_answer)
    w = np.clip(p_answer.mean() / p_answer, *WEIGHT_CLIP)
    return w / w.mean(), {"used": True, "invitations": invites.num_rows, "answer_rate": round(float(answered.mean()), 4),
                          "weight_range": [round(float(w.min()), 3), round(float(w.max()), 3)]}


def _with_trigger(x: np.ndarray, invites: pa.Table) -> np.ndarray:
    after_care = pc.equal(invites["trigger"], "after_care").fill_null(False).to_numpy(zero_copy_only=False)
    return np.column_stack([x, after_care.astype(float)])


def _shift(level: str, link: OrdinalLink, reg, waves, x_tracker=None, y_tracker=None) -> float:
    """The level shift of ``link`` and ``reg``: the anchor's NPS on its base samples (``waves``), or the
    most likely on the tracker answers given."""
    if level == "anchor":
        return link.shift_for_nps([(reg.predict(xb), nps) for xb, nps in waves])
    if level == "tracker":
        return link.shift_for(reg.predict(x_tracker), y_tracker)
    return 0.0


def _base_samples(ws: Workspace, enc: Encoder, feats, days: list[tuple[dt.date, float | None]]) -> list[tuple[np.ndarray, float | None]]:
    """Each day's base features (a sample of at most ANCHOR_SAMPLE subscribers), with the value given for it."""
    with ws.session() as engine:
        (n,) = engine.query_row("SELECT count(*) FROM subscribers", step="subscribers")
        out = []
        for day, value in days:
            xb = build_features(engine, base_requests(engine, day, max(1, n // ANCHOR_SAMPLE)), feats)
            if xb.num_rows == 0:
                raise InputError(f"{day}: no subscribers with data on that day to set the level on")
            out.append((enc.matrix(xb), value))
    return out


def _span(days: np.ndarray) -> list[str]:
    return [str(days.min()), str(days.max())]
