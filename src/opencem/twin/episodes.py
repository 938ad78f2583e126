"""Poor-experience episodes: grid x hour cells whose experience is anomalously poor against the grid's
own seasonal baseline, merged across neighbouring grids and close hours.

Method (documented with its figures in docs/twin.md):

1. Per grid x hour, four experience statistics from the sessions: poor-session share, failed-session
   share, mean log DL throughput and mean log RTT. Each grid is pooled with its six H3 neighbours
   (a fault covers several hexagons; pooling gives the test its power).
2. Baseline per pooled grid x hour-of-day x day type (weekday / weekend): a low quantile (30 %) of
   the grid's own daily values, so a fault that lasts most of the window (a chronic problem fixed on
   day 17 of 28) does not become the baseline.
3. One z per statistic against that baseline (binomial for shares, the network-wide session spread for
   the means), re-centred and scaled by the median / MAD over all grid-hours (the empirical null:
   sessions of one subscriber are not independent). A grid-hour is anomalous when any z passes
   ``threshold`` and the pooled grid-hour has ``min_sessions``.
4. Anomalous grid-hours are merged into one episode when their grids are neighbours (or the same)
   and their hours are at most ``max_gap_hours`` apart (connected components).
"""

from __future__ import annotations

from dataclasses import dataclass

import h3
import numpy as np
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

BASELINE_QUANTILE = 0.3
STATS = ("poor", "fail", "thp", "rtt", "rsrp", "sinr")
WINDOWS = (1, 4, 12)  # hours: short outages and slow, weak faults both get a test with power


@dataclass(frozen=True)
class DetectConfig:
    threshold: float = 8.0  # robust z a pooled grid-hour must pass
    min_sessions: int = 30  # sessions a pooled grid-hour needs to be tested
    max_gap_hours: int = 2  # anomalous hours this close are one episode
    min_grid_hours: int = 2  # smaller clusters are dropped as noise


def neighbours_table(grids: list[str]) -> pa.Table:
    """(grid, nb): every grid with itself and its ring-1 H3 neighbours."""
    a, b = [], []
    for g in grids:
        for n in h3.grid_disk(g, 1):
            a.append(g)
            b.append(n)
    return pa.table({"grid": a, "nb": b})


def score_grid_hours(con, cfg: DetectConfig) -> pa.Table:
    """Per pooled grid x hour: the statistics, their baselines and robust z (uses temp table ``sess``)."""
    con.sql("""CREATE OR REPLACE TEMP TABLE gh_stats AS
      SELECT grid, hour, count(*) AS n,
        sum(CASE WHEN poor THEN 1 ELSE 0 END) AS poor, sum(CASE WHEN success THEN 0 ELSE 1 END) AS fail,
        count(throughput_dl_kbps) AS n_thp, sum(ln(greatest(throughput_dl_kbps, 1))) AS s_thp,
        count(rtt_ms) AS n_rtt, sum(ln(greatest(rtt_ms, 1))) AS s_rtt
      FROM sess GROUP BY grid, hour""")
    con.sql("""CREATE OR REPLACE TEMP TABLE gh_radio AS
      SELECT grid, hour, count(*) AS n_mr, sum(rsrp_dbm) AS s_rsrp, sum(sinr_db) AS s_sinr FROM mr GROUP BY grid, hour""")
    grids = [r[0] for r in con.sql("SELECT DISTINCT grid FROM gh_stats ORDER BY grid").fetchall()]
    con.register("nb_in", neighbours_table(grids))
    con.sql("CREATE OR REPLACE TEMP TABLE nb AS SELECT * FROM nb_in")
    con.unregister("nb_in")
    sd_thp, sd_rtt, p_poor, p_fail = con.execute("""SELECT stddev(ln(greatest(throughput_dl_kbps, 1))), stddev(ln(greatest(rtt_ms, 1))),
        avg(CASE WHEN poor THEN 1E0 ELSE 0E0 END), avg(CASE WHEN success THEN 0E0 ELSE 1E0 END) FROM sess""").fetchall()[0]
    sd_rsrp, sd_sinr = con.execute("SELECT stddev(rsrp_dbm), stddev(sinr_db) FROM mr").fetchall()[0]
    # a share's baseline is floored near the network's rate: a grid with no failure yet is not expected never to fail
    floor_poor, floor_fail = 0.5 * p_poor, p_fail
    windows = ", ".join(f"sum(e_{st}) OVER w{w} / sqrt(sum(v_{st}) OVER w{w}) AS z_{st}_{w}h" for st in STATS for w in WINDOWS)
    frames = ", ".join(
        f"w{w} AS (PARTITION BY grid ORDER BY hour RANGE BETWEEN INTERVAL {w // 2} HOUR PRECEDING AND INTERVAL {(w - 1) // 2} HOUR FOLLOWING)"
        for w in WINDOWS)
    return con.sql(f"""
      WITH p AS (
        SELECT nb.grid, s.hour, sum(s.n) AS n, sum(s.poor) AS poor, sum(s.fail) AS fail,
               sum(s.n_thp) AS n_thp, sum(s.s_thp) / nullif(sum(s.n_thp), 0) AS thp,
               sum(s.n_rtt) AS n_rtt, sum(s.s_rtt) / nullif(sum(s.n_rtt), 0) AS rtt
        FROM nb JOIN gh_stats s ON s.grid = nb.nb GROUP BY nb.grid, s.hour),
      pr AS (
        SELECT nb.grid, r.hour, sum(r.n_mr) AS n_mr, sum(r.s_rsrp) / sum(r.n_mr) AS rsrp, sum(r.s_sinr) / sum(r.n_mr) AS sinr
        FROM nb JOIN gh_radio r ON r.grid = nb.nb GROUP BY nb.grid, r.hour),
      d AS (SELECT p.*, pr.n_mr, pr.rsrp, pr.sinr, hour(p.hour) AS hod, isodow(p.hour) >= 6 AS weekend,
                   p.poor / p.n AS poor_share, p.fail / p.n AS fail_share
            FROM p LEFT JOIN pr USING (grid, hour)),
      b AS (
        SELECT grid, hod, weekend,
          quantile_cont(poor_share, {BASELINE_QUANTILE}) AS b_poor, quantile_cont(fail_share, {BASELINE_QUANTILE}) AS b_fail,
          quantile_cont(thp, {1 - BASELINE_QUANTILE}) AS b_thp, quantile_cont(rtt, {BASELINE_QUANTILE}) AS b_rtt,
          quantile_cont(rsrp, {1 - BASELINE_QUANTILE}) AS b_rsrp, quantile_cont(sinr, {1 - BASELINE_QUANTILE}) AS b_sinr
        FROM d WHERE n >= {cfg.min_sessions} GROUP BY ALL),
      e AS (
        SELECT d.grid, d.hour, d.n, d.poor, d.poor_share, d.fail_share, d.thp, d.rtt, d.n_mr, d.rsrp, d.sinr,
          b.b_poor, b.b_fail, b.b_thp, b.b_rtt, b.b_rsrp, b.b_sinr,
          -- excess over the baseline and its variance under "no change", per statistic
          d.poor - d.n * greatest(b.b_poor, {floor_poor}) AS e_poor,
          d.n * greatest(b.b_poor, {floor_poor}) * (1 - greatest(b.b_poor, {floor_poor})) AS v_poor,
          d.fail - d.n * greatest(b.b_fail, {floor_fail}) AS e_fail,
          d.n * greatest(b.b_fail, {floor_fail}) * (1 - greatest(b.b_fail, {floor_fail})) AS v_fail,
          coalesce(d.n_thp * (b.b_thp - d.thp), 0) AS e_thp, greatest(d.n_thp, 1) * {sd_thp ** 2} AS v_thp,
          coalesce(d.n_rtt * (d.rtt - b.b_rtt), 0) AS e_rtt, greatest(d.n_rtt, 1) * {sd_rtt ** 2} AS v_rtt,
          coalesce(d.n_mr * (b.b_rsrp - d.rsrp), 0) AS e_rsrp, greatest(d.n_mr, 1) * {sd_rsrp ** 2} AS v_rsrp,
          coalesce(d.n_mr * (b.b_sinr - d.sinr), 0) AS e_sinr, greatest(d.n_mr, 1) * {sd_sinr ** 2} AS v_sinr
        FROM d JOIN b USING (grid, hod, weekend)
        WHERE d.n >= {cfg.min_sessions})
      SELECT e.*, {windows}
      FROM e
      WINDOW {frames}
      ORDER BY e.grid, e.hour""").to_arrow_table()


def robust_z(scored: pa.Table) -> np.ndarray:
    """(rows, stats x windows) z re-centred and scaled by each one's median and MAD over all grid-hours."""
    out = []
    for s in (f"{st}_{w}h" for st in STATS for w in WINDOWS):
        z = np.nan_to_num(scored[f"z_{s}"].to_numpy(zero_copy_only=False).astype(float), nan=0.0)
        med = np.median(z)
        mad = max(1.0, 1.4826 * np.median(np.abs(z - med)))  # only ever widen the model's own spread
        out.append((z - med) / mad)
    return np.stack(out, axis=1)


def cluster(grids: np.ndarray, hours: np.ndarray, max_gap_hours: int) -> np.ndarray:
    """Connected-component label of each anomalous (grid, hour): neighbours or same grid, hours close."""
    n = len(grids)
    h = hours.astype("datetime64[h]").astype(np.int64)
    at: dict[tuple[str, int], int] = {(g, t): i for i, (g, t) in enumerate(zip(grids, h))}
    rows, cols = [], []
    for i, (g, t) in enumerate(zip(grids, h)):
        for nbr in h3.grid_disk(g, 1):
            for dt in range(-max_gap_hours, max_gap_hours + 1):
                j = at.get((nbr, t + dt))
                if j is not None and j > i:
                    rows.append(i)
                    cols.append(j)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def device_days(con, threshold: float) -> pa.Table:
    """Device models whose sessions are poorer than other devices' in the same grid-hours, by day,
    against the model's own quiet days (the same low quantile as the grid baseline).

    A device problem has no place: it follows one model wherever it goes, so it is tested per
    model x day rather than per grid."""
    return con.sql(f"""
      WITH gh AS (SELECT grid, hour, avg(CASE WHEN poor THEN 1E0 ELSE 0E0 END) AS p FROM sess GROUP BY grid, hour),
      md AS (
        SELECT s.device_model, s.day, count(*) AS n, CAST(sum(CASE WHEN s.poor THEN 1 ELSE 0 END) AS BIGINT) AS o, sum(gh.p) AS e
        FROM sess s JOIN gh USING (grid, hour) WHERE s.device_model IS NOT NULL GROUP BY ALL),
      b AS (SELECT device_model, quantile_cont(o / e, {BASELINE_QUANTILE}) AS ratio0 FROM md WHERE e > 0 GROUP BY ALL)
      SELECT md.*, b.ratio0, (md.o - md.e * b.ratio0) / sqrt(md.e * b.ratio0) AS z
      FROM md JOIN b USING (device_model)
      WHERE (md.o - md.e * b.ratio0) / sqrt(md.e * b.ratio0) > {threshold}
      ORDER BY device_model, day""").to_arrow_table()
