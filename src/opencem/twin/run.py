"""`opencem diagnose`: build the twin, find the episodes, name their causes, write the tables."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h3
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..engine.files import atomic_dir, atomic_write_text
from ..indicators.tree import load_tree
from ..nps.features import connect, one
from .cause import attribute, evidence
from .episodes import STATS, WINDOWS, DetectConfig, cluster, device_days, robust_z, score_grid_hours
from ..geo import DEFAULT_RESOLUTION
from .state import build_state

TABLES = ("state_grid_hour", "state_grid_cell_hour", "episodes", "episode_units", "episode_subscribers")


@dataclass
class Diagnosis:
    folder: Path
    episodes: pa.Table
    grid_hours: int
    start: dt.date
    end: dt.date


def twin_dir(workspace: Path) -> Path:
    return Path(workspace) / "twin"


def tree_of(workspace: Path):
    calibrated = Path(workspace) / "tree.calibrated.yaml"
    return load_tree(calibrated if calibrated.exists() else None)


def diagnose(workspace: Path, start: dt.date | None = None, end: dt.date | None = None,
             resolution: int = DEFAULT_RESOLUTION, cfg: DetectConfig = DetectConfig(),
             progress: Callable[[str], None] | None = None) -> Diagnosis:
    """Twin state, episodes and causes for days ``start`` <= day < ``end`` (default: all the data)."""
    say = progress or (lambda _m: None)
    ws = Path(workspace)
    if not 0 <= resolution <= 15:
        raise ValueError(f"--resolution {resolution}: H3 resolutions run from 0 to 15 (9 is about 0.1 km2)")
    con = connect(ws)
    first, last = one(con, "SELECT min(CAST(start_time AS DATE)), max(CAST(start_time AS DATE)) FROM xdr")
    start, end = start or first, end or last + dt.timedelta(days=1)
    if start >= end:
        raise ValueError(f"empty window: --start {start} is not before --end {end}")
    say(f"twin state {start} .. {end - dt.timedelta(days=1)}, H3 resolution {resolution}")
    build_state(con, tree_of(ws), start, end, resolution)
    say("testing every grid-hour against its own baseline")
    scored = score_grid_hours(con, cfg)
    z = robust_z(scored)
    flagged = z.max(1) > cfg.threshold
    units = scored.filter(pa.array(flagged)).append_column("z", pa.array(z.max(1)[flagged]))
    units = units.append_column("signal", pa.array([_signal(i) for i in z.argmax(1)[flagged]], pa.string()))
    labels = cluster(np.array(units["grid"].to_pylist(), dtype=object), units["hour"].to_numpy(), cfg.max_gap_hours)
    keep = np.isin(labels, [k for k, n in zip(*np.unique(labels, return_counts=True)) if n >= cfg.min_grid_hours])
    units, labels = units.filter(pa.array(keep)), labels[keep]
    con.register("units_in", units.select(["grid", "hour", "z", "signal"]).append_column("label", pa.array(labels)))
    # episodes numbered by start, then place, so a re-run names them the same
    con.sql("""CREATE OR REPLACE TEMP TABLE ep_units AS
      SELECT 'E' || lpad(CAST(dense_rank() OVER (ORDER BY first_hour, first_grid, label) AS VARCHAR), 4, '0') AS episode_id,
             grid, hour, z, signal
      FROM (SELECT *, min(hour) OVER (PARTITION BY label) AS first_hour, min(grid) OVER (PARTITION BY label) AS first_grid FROM units_in)""")
    con.unregister("units_in")
    say("naming causes")
    ev = evidence(con)
    causes, confidence, cells, words = attribute(ev)
    con.register("cause_in", pa.table({"episode_id": ev["episode_id"], "cause": causes, "confidence": confidence,
                                       "cells": pa.array(cells, pa.list_(pa.string())), "evidence": words}))
    area_episodes = con.sql(_episode_sql()).to_arrow_table()
    con.unregister("cause_in")
    episodes = _with_device_episodes(con, area_episodes, cfg)
    folder = _write(con, ws, episodes)
    return Diagnosis(folder, episodes, one(con, "SELECT count(*) FROM state_grid_hour")[0], start, end)


def _signal(i: int) -> str:
    return f"{STATS[i // len(WINDOWS)]}_{WINDOWS[i % len(WINDOWS)]}h"


def _episode_sql() -> str:
    return """
      WITH u AS (SELECT episode_id, count(*) AS grid_hours, count(DISTINCT grid) AS grids, min(hour) AS start_time,
                        max(hour) + INTERVAL 1 HOUR AS end_time, round(max(z), 3) AS max_z, arg_max(signal, z) AS main_signal,
                        list(DISTINCT grid ORDER BY grid) AS grid_list FROM ep_units GROUP BY episode_id),
      s AS (SELECT u.episode_id, x.subscriber_id, x.arpu_monthly, x.poor, x.grid FROM ep_units u
            JOIN sess x ON x.grid = u.grid AND x.hour = u.hour),
      a AS (SELECT episode_id, count(*) AS sessions, CAST(sum(CASE WHEN poor THEN 1 ELSE 0 END) AS BIGINT) AS poor_sessions,
                   count(DISTINCT subscriber_id) AS subscribers,
                   count(DISTINCT CASE WHEN poor THEN subscriber_id END) AS affected_subscribers FROM s GROUP BY episode_id),
      v AS (SELECT episode_id, round(sum(arpu_monthly), 2) AS affected_arpu FROM (
              SELECT DISTINCT episode_id, subscriber_id, arpu_monthly FROM s WHERE poor) GROUP BY episode_id),
      w AS (  -- where the poor sessions are: centre of the footprint weighted by them
            SELECT episode_id, grid, CAST(sum(CASE WHEN poor THEN 1 ELSE 0 END) AS DOUBLE) + 0.1 AS weight FROM s GROUP BY ALL)
      SELECT u.episode_id, 'area' AS kind, u.start_time, u.end_time, u.grid_hours, u.grids, u.max_z, u.main_signal,
             a.sessions, a.poor_sessions, a.subscribers, a.affected_subscribers, coalesce(v.affected_arpu, 0) AS affected_arpu,
             c.cause, c.confidence, c.cells, c.evidence, CAST(NULL AS VARCHAR) AS device_model,
             u.grid_list, (SELECT list(struct_pack(grid := w.grid, weight := w.weight)) FROM w WHERE w.episode_id = u.episode_id) AS weights
      FROM u JOIN a USING (episode_id) LEFT JOIN v USING (episode_id) JOIN cause_in c USING (episode_id)
      ORDER BY u.episode_id"""


def _with_device_episodes(con, area: pa.Table, cfg: DetectConfig) -> pa.Table:
    """Area episodes plus one episode per run of consecutive anomalous days of a device model; adds
    the footprint centre (poor-session weighted) and area."""
    rows = area.to_pylist()
    days = device_days(con, cfg.threshold).to_pylist()
    runs: list[list[dict]] = []
    for d in days:
        if runs and runs[-1][-1]["device_model"] == d["device_model"] and (d["day"] - runs[-1][-1]["day"]).days <= 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    for i, run in enumerate(r for r in runs if len(r) >= 2):
        model, a, b = run[0]["device_model"], run[0]["day"], run[-1]["day"] + dt.timedelta(days=1)
        n, o, e = (sum(d[k] for d in run) for k in ("n", "o", "e"))
        stats = con.execute("""SELECT count(DISTINCT subscriber_id), count(DISTINCT CASE WHEN poor THEN subscriber_id END),
              list(DISTINCT grid ORDER BY grid) FILTER (WHERE poor) FROM sess
            WHERE device_model = ? AND day >= ? AND day < ?""", [model, a, b]).fetchall()[0]
        arpu = con.execute("""SELECT round(coalesce(sum(arpu_monthly), 0), 2) FROM (SELECT DISTINCT subscriber_id, arpu_monthly FROM sess
            WHERE device_model = ? AND day >= ? AND day < ? AND poor)""", [model, a, b]).fetchall()[0][0]
        rows.append({"episode_id": f"D{i + 1:03d}", "kind": "device", "start_time": dt.datetime.combine(a, dt.time()),
                     "end_time": dt.datetime.combine(b, dt.time()), "grid_hours": 0, "grids": len(stats[2] or []),
                     "max_z": round(max(d["z"] for d in run), 3), "main_signal": "poor_device_day", "sessions": int(n), "poor_sessions": int(o),
                     "subscribers": stats[0], "affected_subscribers": stats[1], "affected_arpu": arpu, "cause": "device",
                     "confidence": round(max(0.0, 1 - e * run[0]["ratio0"] / max(o, 1)), 3), "cells": [],  # share of its poor sessions in excess
                     "evidence": f"{model}: {o} poor sessions where devices of other models in the same grid-hours would have had "
                                 f"{e * run[0]['ratio0']:.0f} ({(o / e) / run[0]['ratio0']:.1f}x its own quiet days), {len(run)} days",
                     "device_model": model, "grid_list": [], "weights": []})
    for r in rows:
        w = r.pop("weights") or []
        if w:
            ll = np.array([h3.cell_to_latlng(x["grid"]) for x in w])
            wt = np.array([x["weight"] for x in w])
            r["center_lat"], r["center_lon"] = (round(float(v), 6) for v in (ll * wt[:, None]).sum(0) / wt.sum())
        else:
            r["center_lat"] = r["center_lon"] = None
        r["area_km2"] = round(len(r["grid_list"]) * h3.average_hexagon_area(h3.get_resolution(r["grid_list"][0]), "km^2"), 3) \
            if r["grid_list"] else None
    return pa.Table.from_pylist(rows) if rows else pa.table({"episode_id": pa.array([], pa.string())})


def _write(con, ws: Path, episodes: pa.Table) -> Path:
    folder = twin_dir(ws)
    con.register("episodes_out", episodes)
    con.sql("""CREATE OR REPLACE TEMP TABLE episode_subscribers AS
      SELECT u.episode_id, x.subscriber_id, any_value(x.arpu_monthly) AS arpu_monthly, count(*) AS sessions,
             sum(CASE WHEN x.poor THEN 1 ELSE 0 END) AS poor_sessions
      FROM ep_units u JOIN sess x ON x.grid = u.grid AND x.hour = u.hour GROUP BY ALL
      UNION ALL
      SELECT e.episode_id, x.subscriber_id, any_value(x.arpu_monthly), count(*), sum(CASE WHEN x.poor THEN 1 ELSE 0 END)
      FROM episodes_out e JOIN sess x ON e.kind = 'device' AND x.device_model = e.device_model
        AND x.start_time >= e.start_time AND x.start_time < e.end_time GROUP BY ALL
      ORDER BY 1, 2""")
    con.unregister("episodes_out")
    with atomic_dir(folder) as tmp:
        tmp.mkdir()
        for name in ("state_grid_hour", "state_grid_cell_hour"):
            con.sql(f"COPY (SELECT * FROM {name}) TO '{tmp / name}' (FORMAT parquet, PARTITION_BY (day))")
        pq.write_table(episodes, tmp / "episodes.parquet")
        pq.write_table(con.sql("SELECT * EXCLUDE (z) FROM ep_units ORDER BY episode_id, grid, hour").to_arrow_table(),
                       tmp / "episode_units.parquet")
        pq.write_table(con.sql("SELECT * FROM episode_subscribers").to_arrow_table(), tmp / "episode_subscribers.parquet")
    return folder


# -- GeoJSON ---------------------------------------------------------------------------------------------
def _hex_polygon(grid: str) -> list[list[float]]:
    ring = [[round(lon, 6), round(lat, 6)] for lat, lon in h3.cell_to_boundary(grid)]
    return ring + [ring[0]]


def episodes_geojson(episodes: pa.Table) -> dict:
    """One feature per area episode: its footprint as a MultiPolygon of hexagons and its summary."""
    feats = []
    for r in episodes.to_pylist():
        if not r["grid_list"]:
            continue
        props = {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in r.items() if k != "grid_list"}
        feats.append({"type": "Feature", "id": r["episode_id"], "properties": props,
                      "geometry": {"type": "MultiPolygon", "coordinates": [[_hex_polygon(g)] for g in r["grid_list"]]}})
    return {"type": "FeatureCollection", "features": feats}


def state_geojson(workspace: Path, start: dt.datetime, end: dt.datetime) -> dict:
    """Twin state summed over ``start`` <= hour < ``end``: one hexagon per grid with its sessions,
    poor share, CEI, RSRP and load."""
    con = connect(workspace)
    glob = twin_dir(workspace) / "state_grid_hour" / "**" / "*.parquet"
    rows = con.execute(f"""
      SELECT grid, sum(sessions) AS sessions, max(subscribers) AS subscribers_max_hour, sum(poor_sessions) AS poor_sessions,
             round(sum(poor_sessions) / sum(sessions), 4) AS poor_share, round(sum(cei * sessions) / sum(sessions), 2) AS cei,
             round(avg(rsrp_dbm_p50), 1) AS rsrp_dbm_p50, round(avg(prb_util_dl), 3) AS prb_util_dl
      FROM read_parquet('{glob}', hive_partitioning = true)
      WHERE hour >= ? AND hour < ? GROUP BY grid ORDER BY grid""", [start, end]).fetchall()
    cols = ["grid", "sessions", "subscribers_max_hour", "poor_sessions", "poor_share", "cei", "rsrp_dbm_p50", "prb_util_dl"]
    feats = [{"type": "Feature", "id": r[0], "properties": dict(zip(cols, r)),
              "geometry": {"type": "Polygon", "coordinates": [_hex_polygon(r[0])]}} for r in rows]
    return {"type": "FeatureCollection", "features": feats}


def write_geojson(path: Path, collection: dict) -> None:
    atomic_write_text(path, json.dumps(collection, default=str))


def load_episodes(workspace: Path) -> pa.Table:
    f = twin_dir(workspace) / "episodes.parquet"
    if not f.exists():
        raise FileNotFoundError(f"{f}: no episodes yet; run `opencem diagnose --workspace {workspace}` first")
    return pq.read_table(f)

