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

from ..engine import Engine
from ..engine.pipeline import sql_file

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


def score_grid_hours(engine: Engine, cfg: DetectConfig) -> pa.Table:
    """Per pooled grid x hour: the statistics, their baselines and robust z (reads tables ``sess_cell_hour`` and ``mr``)."""
    engine.create_table("gh_stats", sql_file("opencem.twin", "gh_stats"))
    engine.create_table("gh_radio", sql_file("opencem.twin", "gh_radio"))
    grids = engine.query_arrow(sql_file("opencem.twin", "gh_grids"), step="gh_grids")["grid"].to_pylist()
    engine.register_arrow("nb", neighbours_table(grids))
    sd_thp, sd_rtt, p_poor, p_fail, sd_rsrp, sd_sinr = engine.query_row(sql_file("opencem.twin", "network_spread"), step="network_spread")
    windows = ", ".join(f"sum(e_{st}) OVER w{w} / sqrt(sum(v_{st}) OVER w{w}) AS z_{st}_{w}h" for st in STATS for w in WINDOWS)
    frames = ", ".join(
        f"w{w} AS (PARTITION BY grid ORDER BY hour RANGE BETWEEN INTERVAL {w // 2} HOUR PRECEDING AND INTERVAL {(w - 1) // 2} HOUR FOLLOWING)"
        for w in WINDOWS)
    # a share's baseline is floored near the network's rate: a grid with no failure yet is not expected never to fail
    params = {"q_low": BASELINE_QUANTILE, "q_high": 1 - BASELINE_QUANTILE, "min_sessions": cfg.min_sessions,
              "floor_poor": 0.5 * p_poor, "floor_fail": p_fail,
              "var_thp": sd_thp ** 2, "var_rtt": sd_rtt ** 2, "var_rsrp": sd_rsrp ** 2, "var_sinr": sd_sinr ** 2}
    return engine.query_arrow(sql_file("opencem.twin", "grid_hour_scores").format(windows=windows, frames=frames), params, step="grid_hour_scores")


def robust_z(scored: pa.Table) -> np.ndarray:
    """(rows, stats x windows) z re-centred and scaled by each one's median and MAD over all grid-hours."""
    out = []
    for s in (f"{st}_{w}h" for st in STATS for w in WINDOWS):
        z = np.nan_to_num(scored[f"z_{s}"].to_numpy(zero_copy_only=False).astype(float), nan=0.0)
        med = np.median(z)
        mad = max(1.0, 1.4826 * np.median(np.abs(z - med)))  # only ever widen the model's own spread
        out.append((z - med) / mad)
    return np.stack(out, axis=1)


def neighbours(grids: np.ndarray, hours: np.ndarray, max_gap_hours: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j), i < j, of (grid, hour)s that touch: neighbours or same grid, hours at most max_gap_hours apart."""
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
    return np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)


def cluster(grids: np.ndarray, hours: np.ndarray, max_gap_hours: int, keys: np.ndarray | None = None) -> np.ndarray:
    """Connected-component label of each anomalous (grid, hour): neighbours or same grid, hours close; and,
    with ``keys``, (grid, hour)s of the same non-null key with hours close, wherever they are (the sites of
    one transport link)."""
    rows, cols = neighbours(grids, hours, max_gap_hours)
    if keys is not None:
        h = hours.astype("datetime64[h]").astype(np.int64)
        by_key: dict[str, list[tuple[int, int]]] = {}
        for i, (k, t) in enumerate(zip(keys, h)):
            if k is not None:
                by_key.setdefault(k, []).append((int(t), i))
        runs = [sorted(items) for items in by_key.values()]
        pairs = [(a, b) for r in runs for (s, a), (t, b) in zip(r, r[1:]) if t - s <= max_gap_hours]  # consecutive: enough to connect
        rows = np.concatenate([rows, np.array([a for a, _ in pairs], dtype=np.int64)])
        cols = np.concatenate([cols, np.array([b for _, b in pairs], dtype=np.int64)])
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(grids), len(grids)))
    return connected_components(graph, directed=False)[1]


def device_days(engine: Engine, threshold: float) -> pa.Table:
    """Device models whose sessions are poorer than other devices' in the same grid-hours, by day,
    against the model's own quiet days (the same low quantile as the grid baseline): the days past half
    the threshold, which :func:`device_runs` pools.

    A device problem has no place: it follows one model wherever it goes, so it is tested per
    model x day rather than per grid."""
    return engine.query_arrow(sql_file("opencem.twin", "device_days"), {"quantile": BASELINE_QUANTILE, "threshold": threshold / 2},
                              step="device_days")


def device_runs(days: list[dict], threshold: float) -> list[list[dict]]:
    """Runs of 2 or more consecutive days of one model (rows of :func:`device_days`) whose pooled excess passes
    ``threshold``: z of the run's poor sessions against its expected ones. A firmware fault that lasts weeks
    raises a model's poor sessions by a steady amount, each day's z near the threshold (7-10 against 8 on one
    seed), which a test of each day alone finds on scattered days and never as a run."""
    runs: list[list[dict]] = []
    for d in days:
        if runs and runs[-1][-1]["device_model"] == d["device_model"] and (d["day"] - runs[-1][-1]["day"]).days <= 1:
            runs[-1].append(d)
        else:
            runs.append([d])

    def pooled(run: list[dict]) -> float:
        expected = sum(d["e"] for d in run) * run[0]["ratio0"]
        return (sum(d["o"] for d in run) - expected) / np.sqrt(expected)

    return [r for r in runs if len(r) >= 2 and pooled(r) > threshold]
