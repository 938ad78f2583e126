"""Calibrate the indicator tree on survey answers and report how well the CEI agrees with them.

Objective side: each respondent's KQI scores over the days before the answer (usage-weighted), from
`cei_service_day`. Subjective side: the NPS answer 0-10. Surveys are split in time: non-negative
least squares on the earliest half gives KQI weights within each service and service importances; the
next quarter chooses how far to move from the default weights towards the fitted ones (shrinkage against
over-fitting a few hundred answers); the last quarter measures the CEI-survey correlation before and
after, per respondent and per segment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
from scipy.optimize import nnls
from scipy.stats import pearsonr, spearmanr

from ..engine import Engine, sql_file
from ..errors import InputError
from ..indicators.tree import Tree, cei_service_sql, cei_subscriber_sql
from ..workspace import Workspace

_SQL = "opencem.measure"  # measure/sql/calibration_*.sql

SEGMENTS = {
    "plan": "s.plan",
    "value_tier": "CASE WHEN s.arpu_monthly >= 40 THEN 'high' WHEN s.arpu_monthly >= 18 THEN 'mid' ELSE 'low' END",
    "device": "s.device_capability",
    "home_area": "s.home_area",
}


@dataclass
class CalibrationReport:
    surveys_train: int
    surveys_valid: int
    surveys_test: int
    blend: float  # 0 = default weights kept, 1 = fitted weights
    window_days: int
    respondent_r_default: float
    respondent_r_calibrated: float
    respondent_spearman_calibrated: float
    segment_r: dict[str, tuple[int, float, float]] = field(default_factory=dict)  # segment -> (n groups, r default, r calibrated)
    tree: Tree | None = None


def _floats(t: pa.Table) -> np.ndarray:
    """A query result as a float matrix (rows x columns), NULL as NaN."""
    return np.column_stack([np.asarray(c.to_pylist(), dtype=float) for c in t.columns])


def _respondent_cei(eng: Engine, tree: Tree, window: int) -> np.ndarray:
    """Usage-weighted mean overall CEI over each survey's window, in survey order."""
    eng.create_table("calibration_cei_service", cei_service_sql(tree, "kqi_pspu_day"))
    eng.create_table("calibration_cei_subscriber", cei_subscriber_sql(tree, "calibration_cei_service"))
    t = eng.query_arrow(sql_file(_SQL, "calibration_respondent_cei"), {"window": window}, step="calibration_respondent_cei")
    return np.asarray(t["cei"].to_pylist(), dtype=float)


def _blend(tree: Tree, fitted: dict, lam: float, n_train: int) -> Tree:
    """Weights moved a share `lam` of the way from the tree's towards the fitted ones."""
    w = tree.weights()
    kqi = {s: {k: (1 - lam) * w["kqi"][s][k] + lam * v for k, v in ks.items()} for s, ks in fitted["kqi"].items()}
    imp = {s: (1 - lam) * w["importance"][s] + lam * v for s, v in fitted["importance"].items()}
    return tree.with_weights(kqi=kqi, importance=imp,
                             source=f"calibrated on {n_train} survey answers (NNLS, blend {lam:g} with the defaults)")


def calibrate(workspace: Path, tree: Tree, window_days: int = 14) -> CalibrationReport:
    with Workspace(workspace).session(tables=("kqi_pspu_day", "surveys", "subscribers")) as eng:
        return _calibrate(eng, tree, window_days)


def _calibrate(eng: Engine, tree: Tree, window_days: int) -> CalibrationReport:
    eng.create_table("calibration_surveys", sql_file(_SQL, "calibration_surveys"))
    n = eng.row_count("calibration_surveys")
    if n < 40:
        raise InputError(f"only {n} survey answers in the workspace; calibration needs at least 40")
    split = eng.query_arrow(sql_file(_SQL, "calibration_split"), step="calibration_split")
    ids = np.asarray(split["survey_id"].to_pylist())
    y = np.asarray(split["score"].to_pylist(), dtype=float)
    part = np.asarray(split["part"].to_pylist())
    train, valid, test = part == 0, part == 1, part == 2

    # features: per service x KQI, usage share x usage-weighted mean score over the window
    eng.create_table("calibration_kqi_scores", cei_service_sql(tree, "kqi_pspu_day"))
    cols = [(svc, k.name) for svc, node in tree.services.items() for k in node.kqis]
    sums = ", ".join(
        f"sum(CASE WHEN c.service = '{s}' AND c.score_{k} IS NOT NULL THEN c.sessions * c.score_{k} END)"
        f" / sum(CASE WHEN c.service = '{s}' AND c.score_{k} IS NOT NULL THEN c.sessions END)"
        for s, k in cols)
    shares = ", ".join(f"sum(CASE WHEN c.service = '{s}' THEN c.sessions ELSE 0 END) * 1.0 / nullif(sum(c.sessions), 0)"
                       for s in tree.services)
    raw = _floats(eng.query_arrow(sql_file(_SQL, "calibration_features").format(sums=sums, shares=shares),
                                  {"window": window_days}, step="calibration_features"))
    scores, share = raw[:, : len(cols)], np.nan_to_num(raw[:, len(cols):])
    svc_index = {s: i for i, s in enumerate(tree.services)}
    col_mean = np.nanmean(np.where(np.isnan(scores), np.nan, scores), axis=0)
    scores = np.where(np.isnan(scores), np.nan_to_num(col_mean), scores)
    feats = np.column_stack([share[:, svc_index[s]] * scores[:, j] for j, (s, _) in enumerate(cols)])

    xt, yt = feats[train], y[train]
    beta, _ = nnls(xt - xt.mean(axis=0), yt - yt.mean())
    kqi_w: dict[str, dict[str, float]] = {}
    importance: dict[str, float] = {}
    for svc in tree.services:
        b = {k: beta[j] for j, (s, k) in enumerate(cols) if s == svc}
        total = sum(b.values())
        if total > 0:
            kqi_w[svc] = {k: round(v / total, 4) for k, v in b.items()}
            importance[svc] = total
    if importance:
        mean_imp = np.mean(list(importance.values()))
        importance = {s: round(v / mean_imp, 4) for s, v in importance.items()}
    fitted = {"kqi": kqi_w, "importance": importance}

    def r_on(mask: np.ndarray, cei: np.ndarray) -> float:
        ok = mask & ~np.isnan(cei)
        return float(pearsonr(cei[ok], y[ok])[0]) if ok.sum() > 2 else float("nan")

    cei_default = _respondent_cei(eng, tree, window_days)
    best = (r_on(valid, cei_default), 0.0, tree, cei_default)
    for lam in (0.25, 0.5, 0.75, 1.0):
        t = _blend(tree, fitted, lam, int(train.sum()))
        c = _respondent_cei(eng, t, window_days)
        if r_on(valid, c) > best[0]:
            best = (r_on(valid, c), lam, t, c)
    _, lam, calibrated, cei_cal = best
    test &= ~np.isnan(cei_cal) & ~np.isnan(cei_default)
    report = CalibrationReport(
        surveys_train=int(train.sum()), surveys_valid=int(valid.sum()), surveys_test=int(test.sum()), blend=lam,
        window_days=window_days,
        respondent_r_default=r_on(test, cei_default), respondent_r_calibrated=r_on(test, cei_cal),
        respondent_spearman_calibrated=float(spearmanr(cei_cal[test], y[test])[0]),
        tree=calibrated,
    )
    eng.register_arrow("calibration_test", pa.table({"survey_id": ids[test], "y": y[test], "c0": cei_default[test],
                                                     "c1": cei_cal[test]}))
    for seg, expr in SEGMENTS.items():
        g = _floats(eng.query_arrow(sql_file(_SQL, "calibration_segment").format(segment=expr), step=f"calibration_segment {seg}"))
        if len(g) >= 3:
            report.segment_r[seg] = (len(g), float(pearsonr(g[:, 1], g[:, 0])[0]), float(pearsonr(g[:, 2], g[:, 0])[0]))
    return report
