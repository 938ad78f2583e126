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

import duckdb
import numpy as np
from scipy.optimize import nnls
from scipy.stats import pearsonr, spearmanr

from ..indicators.tree import Tree, cei_service_sql, cei_subscriber_sql

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


def _connect(workspace: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name, folder in (("kqi_pspu_day", "measure/kqi_pspu_day"), ("surveys", "lake/surveys"),
                         ("subscribers", "lake/subscribers")):
        files = sorted(str(p) for p in (workspace / folder).rglob("*.parquet"))
        if not files:
            raise FileNotFoundError(f"{workspace / folder}: no Parquet files; run `opencem measure` first")
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({files!r}, hive_partitioning = true)")
    return con


def _respondent_cei(con, tree: Tree, window: int) -> np.ndarray:
    """Usage-weighted mean overall CEI over each survey's window, in survey order."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _svc AS {cei_service_sql(tree, 'kqi_pspu_day')}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _sub AS {cei_subscriber_sql(tree, '_svc')}")
    return np.array([r[0] if r[0] is not None else np.nan for r in con.execute(f"""
        SELECT sum(c.cei * c.sessions_total) / sum(CASE WHEN c.cei IS NOT NULL THEN c.sessions_total END)
        FROM _surveys v LEFT JOIN _sub c ON c.subscriber_id = v.subscriber_id
          AND c.day BETWEEN v.sday - INTERVAL {window - 1} DAY AND v.sday
        GROUP BY v.survey_id ORDER BY v.survey_id""").fetchall()], dtype=float)


def _blend(tree: Tree, fitted: dict, lam: float, n_train: int) -> Tree:
    """Weights moved a share `lam` of the way from the tree's towards the fitted ones."""
    w = tree.weights()
    kqi = {s: {k: (1 - lam) * w["kqi"][s][k] + lam * v for k, v in ks.items()} for s, ks in fitted["kqi"].items()}
    imp = {s: (1 - lam) * w["importance"][s] + lam * v for s, v in fitted["importance"].items()}
    return tree.with_weights(kqi=kqi, importance=imp,
                             source=f"calibrated on {n_train} survey answers (NNLS, blend {lam:g} with the defaults)")


def calibrate(workspace: Path, tree: Tree, window_days: int = 14) -> CalibrationReport:
    con = _connect(Path(workspace))
    con.execute("""CREATE TEMP TABLE _surveys AS SELECT survey_id, subscriber_id, CAST(survey_time AS DATE) AS sday,
                   score, survey_time FROM surveys ORDER BY survey_id""")
    n = con.execute("SELECT count(*) FROM _surveys").fetchone()[0]
    if n < 40:
        raise ValueError(f"only {n} survey answers in the workspace; calibration needs at least 40")
    q50, q75 = con.execute("SELECT quantile_disc(survey_time, 0.5), quantile_disc(survey_time, 0.75) FROM _surveys").fetchone()
    y = np.array([r[0] for r in con.execute("SELECT score FROM _surveys ORDER BY survey_id").fetchall()], float)
    when = con.execute(f"""SELECT CASE WHEN survey_time <= TIMESTAMP '{q50}' THEN 0
                              WHEN survey_time <= TIMESTAMP '{q75}' THEN 1 ELSE 2 END FROM _surveys ORDER BY survey_id""").fetchall()
    part = np.array([r[0] for r in when])
    train, valid, test = part == 0, part == 1, part == 2

    # features: per service x KQI, usage share x usage-weighted mean score over the window
    con.execute(f"CREATE TEMP TABLE _svc0 AS {cei_service_sql(tree, 'kqi_pspu_day')}")
    cols = [(svc, k.name) for svc, node in tree.services.items() for k in node.kqis]
    sums = ", ".join(
        f"sum(CASE WHEN c.service = '{s}' AND c.score_{k} IS NOT NULL THEN c.sessions * c.score_{k} END)"
        f" / sum(CASE WHEN c.service = '{s}' AND c.score_{k} IS NOT NULL THEN c.sessions END)"
        for s, k in cols)
    shares = ", ".join(f"sum(CASE WHEN c.service = '{s}' THEN c.sessions ELSE 0 END) * 1.0 / nullif(sum(c.sessions), 0)"
                       for s in tree.services)
    rows = con.execute(f"""
        SELECT {sums}, {shares} FROM _surveys v LEFT JOIN _svc0 c ON c.subscriber_id = v.subscriber_id
          AND c.day BETWEEN v.sday - INTERVAL {window_days - 1} DAY AND v.sday
        GROUP BY v.survey_id ORDER BY v.survey_id""").fetchall()
    raw = np.array([[np.nan if x is None else x for x in r] for r in rows], dtype=float)
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

    cei_default = _respondent_cei(con, tree, window_days)
    best = (r_on(valid, cei_default), 0.0, tree, cei_default)
    for lam in (0.25, 0.5, 0.75, 1.0):
        t = _blend(tree, fitted, lam, int(train.sum()))
        c = _respondent_cei(con, t, window_days)
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
    ids = [r[0] for r in con.execute("SELECT survey_id FROM _surveys ORDER BY survey_id").fetchall()]
    con.execute("CREATE TEMP TABLE _eval (survey_id BIGINT, y DOUBLE, c0 DOUBLE, c1 DOUBLE)")
    con.executemany("INSERT INTO _eval VALUES (?, ?, ?, ?)",
                    [(i, float(a), float(b), float(c)) for i, a, b, c, t in zip(ids, y, cei_default, cei_cal, test) if t])
    for seg, expr in SEGMENTS.items():
        g = con.execute(f"""
            SELECT avg(e.y), avg(e.c0), avg(e.c1) FROM _eval e JOIN _surveys v USING (survey_id)
            JOIN subscribers s USING (subscriber_id) GROUP BY {expr} HAVING count(*) >= 5""").fetchall()
        if len(g) >= 3:
            a = np.array(g, dtype=float)
            report.segment_r[seg] = (len(g), float(pearsonr(a[:, 1], a[:, 0])[0]), float(pearsonr(a[:, 2], a[:, 0])[0]))
    return report
