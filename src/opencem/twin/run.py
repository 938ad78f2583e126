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

from ..engine import Engine
from ..engine.files import atomic_dir, atomic_write_text
from ..engine.pipeline import sql_file
from ..errors import InputError
from ..geo import DEFAULT_RESOLUTION
from ..indicators.tree import load_tree
from ..workspace import Workspace
from .cause import HOT_PRB, INTERFERENCE_PEER_DB, TRANSPORT_LOG_RTT, attribute, evidence
from .episodes import STATS, WINDOWS, DetectConfig, cluster, device_days, device_runs, neighbours, robust_z, score_grid_hours
from .state import build_state

CHRONIC_SHARE = 0.5  # a cell hot (or slow) at an hour of day on this share of the days is chronically so then
SLOW_LOG_RTT = float(np.log(2))  # a cell whose sessions' median RTT is twice the network's median cell's is slow
LINK_PRB = 0.1  # a link whose cells carry this much more PRB load than usual is busier, not throttled
SURGE_PRB = 0.25  # a hot hour this far above the cell's own median PRB load at that hour of day is a surge
CHRONIC = "chronic_"  # signals of faults that are their own baseline: their grid-hours form one episode whatever the days between
PM_MIN_SHARE = 0.3  # a site's faulty cells cover the grids whose sessions they usually carry this share of (and their main grid)
FRINGE = 0.5  # an experience cluster up to this share of a PM cluster's grid-hours, touching it, is its fringe
CELL_CAUSES = ("coverage", "interference", "congestion", "transport")  # causes whose named cells are the faulty ones
TABLES = ("state_grid_hour", "state_grid_cell_hour", "episodes", "episode_units", "episode_subscribers")


@dataclass
class Diagnosis:
    folder: Path
    episodes: pa.Table
    grid_hours: int
    start: dt.date
    end: dt.date
    days_built: int = 0  # days whose state was built in this run; the others were read back (twin/state.py)
    days_reused: int = 0


def tree_of(ws: Workspace):
    return load_tree(ws.calibrated_tree if ws.calibrated_tree.exists() else None)


def diagnose(workspace: Path, start: dt.date | None = None, end: dt.date | None = None,
             resolution: int = DEFAULT_RESOLUTION, cfg: DetectConfig = DetectConfig(),
             progress: Callable[[str], None] | None = None, engine: str = "duckdb",
             spark_master: str | None = None, days_folder: Path | None = None) -> Diagnosis:
    """Twin state, episodes and causes for days ``start`` <= day < ``end`` (default: all the data); the SQL
    runs on ``engine`` (duckdb, or spark at ``spark_master``), the clustering and causes in this process.
    Each day's state is kept in ``days_folder`` (default: the workspace's ``twin_days``) and built again only
    when its inputs change."""
    say = progress or (lambda _m: None)
    ws = Workspace(workspace)
    if not 0 <= resolution <= 15:
        raise InputError(f"--resolution {resolution}: H3 resolutions run from 0 to 15 (9 is about 0.1 km2)")
    # DuckDB: a scratch database on disk (a week of placed sessions at 1M outgrows memory)
    disk = {"on_disk": "twin"} if engine == "duckdb" else {"spark_master": spark_master}
    with ws.session(engine, **disk) as engine:
        first, last = engine.query_row(sql_file("opencem.twin", "xdr_days"), step="xdr_days")
        start, end = start or first, end or last + dt.timedelta(days=1)
        if start >= end:
            raise InputError(f"empty window: --start {start} is not before --end {end}")
        say(f"twin state {start} .. {end - dt.timedelta(days=1)}, H3 resolution {resolution}")
        days = build_state(engine, ws, tree_of(ws), start, end, resolution, say, days_folder)
        say("testing every grid-hour against its own baseline")
        scored = score_grid_hours(engine, cfg)
        z = robust_z(scored)
        flagged = z.max(1) > cfg.threshold
        units = scored.filter(pa.array(flagged)).append_column("z", pa.array(z.max(1)[flagged]))
        units = units.append_column("signal", pa.array([_signal(i) for i in z.argmax(1)[flagged]], pa.string()))
        units = _with_pm_units(engine, units.select(["grid", "hour", "z", "signal"]), start, end, cfg)
        labels = _clusters(units, cfg)
        keep = np.isin(labels, [k for k, n in zip(*np.unique(labels, return_counts=True)) if n >= cfg.min_grid_hours])
        units, labels = units.filter(pa.array(keep)), labels[keep]
        engine.register_arrow("units_in", units.select(["grid", "hour", "z", "signal", "site_id"]).append_column("label", pa.array(labels)))
        engine.create_table("ep_units", sql_file("opencem.twin", "ep_units"))
        engine.drop("units_in")
        engine.create_table("area_sessions", sql_file("opencem.twin", "area_sessions"))
        say("naming causes")
        ev = evidence(engine)
        causes, confidence, cells, words = attribute(ev)
        engine.register_arrow("cause_in", pa.table({"episode_id": ev["episode_id"], "cause": causes, "confidence": confidence,
                                                    "cells": pa.array(cells, pa.list_(pa.string())), "evidence": words}))
        area_episodes = engine.query_arrow(sql_file("opencem.twin", "area_episodes"), step="area_episodes")
        engine.drop("cause_in")
        episodes = _with_device_episodes(engine, area_episodes, cfg)
        folder = _write(engine, ws, episodes)
        return Diagnosis(folder, episodes, engine.row_count("state_grid_hour"), start, end, days["built"], days["reused"])


def _with_pm_units(engine: Engine, units: pa.Table, start: dt.date, end: dt.date, cfg: DetectConfig) -> pa.Table:
    """The anomalous grid-hours merged with those of cells that PM or the xDR show faulty against their peers:
    down, interfered, surging, chronically hot or slow, on a slow or throttled link (cell_down.sql, cell_hour_pm.sql,
    cell_events.sql, pm_units.sql), one signal per grid-hour."""
    window = {"start": start, "end": end}
    engine.create_table("cell_down", sql_file("opencem.twin", "cell_down"), window)
    engine.create_table("cell_hour_pm", sql_file("opencem.twin", "cell_hour_pm"), window)
    _cell_events(engine, cfg)
    engine.register_arrow("flagged_units", units)
    merged = engine.query_arrow(sql_file("opencem.twin", "pm_units"), {"min_share": PM_MIN_SHARE, "chronic": CHRONIC, "z": cfg.threshold},
                                step="pm_units")
    engine.drop("flagged_units")
    return merged


def _cell_events(engine: Engine, cfg: DetectConfig) -> None:
    """Table ``cell_events`` (cell_events.sql) from tables cell_down, cell_hour_pm, cell_hour_rtt, sess_cell_hour and cells."""
    engine.create_table("cell_events", sql_file("opencem.twin", "cell_events"), {
        "interference_db": INTERFERENCE_PEER_DB, "hot_prb": HOT_PRB, "chronic_share": CHRONIC_SHARE, "slow_log_rtt": SLOW_LOG_RTT,
        "link_log_rtt": TRANSPORT_LOG_RTT, "link_prb": LINK_PRB, "z": cfg.threshold, "surge_prb": SURGE_PRB})


def _clusters(units: pa.Table, cfg: DetectConfig) -> np.ndarray:
    """Episode label per unit: neighbouring grid-hours close in time, the experience test's together and each
    PM signal's apart (an outage is not merged into a simultaneous city-wide DNS failure); a chronic signal's
    grid-hours by place alone (a sector congested every evening is one episode, not one per evening); a
    transport link's grid-hours by the link too.
    An experience cluster at most FRINGE the size of a transient PM cluster it touches is that fault's fringe
    (the hours before a crowd's cells saturate, the grids around them) and joins it; a larger one is a fault
    of its own, and joined it would drown the PM evidence."""
    grids = np.array(units["grid"].to_pylist(), dtype=object)
    hours = units["hour"].to_numpy()
    signals = np.where(units["placed"].to_numpy(zero_copy_only=False), np.array(units["signal"].to_pylist(), dtype=object), "")
    links = np.array(units["link"].to_pylist(), dtype=object)  # a link signal's sites are one fault, however far apart
    labels = np.full(len(grids), -1, dtype=np.int64)
    for signal in sorted(set(signals)):
        rows = signals == signal
        at = np.zeros(rows.sum(), hours.dtype) if signal.startswith(CHRONIC) else hours[rows]
        labels[rows] = cluster(grids[rows], at, cfg.max_gap_hours, links[rows]) + labels.max() + 1
    transient = np.flatnonzero(~np.char.startswith(signals.astype(str), CHRONIC))
    i, j = (transient[k] for k in neighbours(grids[transient], hours[transient], cfg.max_gap_hours))
    size = np.bincount(labels)
    experience, placed = set(labels[signals == ""].tolist()), set(labels[signals != ""].tolist())
    touching = set(zip(labels[i].tolist(), labels[j].tolist()))
    fringe: dict[int, int] = {}  # experience cluster -> the largest PM cluster it touches
    for a, b in sorted(touching | {(b, a) for a, b in touching}):
        if a in experience and b in placed and size[a] <= FRINGE * size[b] and (a not in fringe or size[b] > size[fringe[a]]):
            fringe[a] = b
    join = np.arange(len(size))
    join[list(fringe)] = list(fringe.values())
    return join[labels]


def _signal(i: int) -> str:
    return f"{STATS[i // len(WINDOWS)]}_{WINDOWS[i % len(WINDOWS)]}h"


def _with_device_episodes(engine: Engine, area: pa.Table, cfg: DetectConfig) -> pa.Table:
    """Area episodes plus one episode per run of consecutive anomalous days of a device model; adds
    the centre (the named cells' sites for a cause of cells, else the footprint's, poor-session weighted)
    and area."""
    rows = area.to_pylist()
    runs = device_runs(device_days(engine, cfg.threshold).to_pylist(), cfg.threshold)
    ids = [f"D{i + 1:03d}" for i in range(len(runs))]
    spans = [(r[0]["device_model"], r[0]["day"], r[-1]["day"] + dt.timedelta(days=1)) for r in runs]  # model, first day, end
    engine.register_arrow("device_runs", pa.table({
        "episode_id": pa.array(ids, pa.string()), "device_model": pa.array([s[0] for s in spans], pa.string()),
        "first_day": pa.array([s[1] for s in spans], pa.date32()), "end_day": pa.array([s[2] for s in spans], pa.date32())}))
    engine.create_table("device_sessions", sql_file("opencem.twin", "device_sessions"))
    engine.drop("device_runs")
    found = {r["episode_id"]: r for r in engine.query_arrow(sql_file("opencem.twin", "device_episode"), step="device_episode").to_pylist()}
    for episode_id, run, (model, a, b) in zip(ids, runs, spans):
        n, o, e = (sum(d[k] for d in run) for k in ("n", "o", "e"))
        stats = found[episode_id]
        rows.append({"episode_id": episode_id, "kind": "device", "start_time": dt.datetime.combine(a, dt.time()),
                     "end_time": dt.datetime.combine(b, dt.time()), "grid_hours": 0, "grids": len(stats["poor_grids"] or []),
                     "max_z": round(max(d["z"] for d in run), 3), "main_signal": "poor_device_day", "sessions": int(n), "poor_sessions": int(o),
                     "subscribers": stats["subscribers"], "affected_subscribers": stats["affected_subscribers"],
                     "affected_arpu": stats["affected_arpu"],
                     "cause": "device",
                     "confidence": round(max(0.0, 1 - e * run[0]["ratio0"] / max(o, 1)), 3), "cells": [],  # share of its poor sessions in excess
                     "evidence": f"{model}: {o} poor sessions where devices of other models in the same grid-hours would have had "
                                 f"{e * run[0]['ratio0']:.0f} ({(o / e) / run[0]['ratio0']:.1f}x its own quiet days), {len(run)} days",
                     "device_model": model, "grid_list": [], "weights": []})
    for r in rows:
        w = r.pop("weights") or [{"grid": g, "weight": 1.0} for g in r["grid_list"] or []]  # no session: each grid alike
        cells_at = r.pop("cells_lat", None), r.pop("cells_lon", None)
        if r["cause"] in CELL_CAUSES and cells_at[0] is not None:  # a fault of named cells is where they are
            r["center_lat"], r["center_lon"] = (round(float(v), 6) for v in cells_at)
        elif w:
            ll = np.array([h3.cell_to_latlng(x["grid"]) for x in w])
            wt = np.array([x["weight"] for x in w])
            r["center_lat"], r["center_lon"] = (round(float(v), 6) for v in (ll * wt[:, None]).sum(0) / wt.sum())
        else:
            r["center_lat"] = r["center_lon"] = None
        r["area_km2"] = round(len(r["grid_list"]) * h3.average_hexagon_area(h3.get_resolution(r["grid_list"][0]), "km^2"), 3) \
            if r["grid_list"] else None
    # no episode: an empty table with the columns later steps read (episode_subscribers.sql, the loop)
    return pa.Table.from_pylist(rows) if rows else pa.table({
        "episode_id": pa.array([], pa.string()), "kind": pa.array([], pa.string()), "cause": pa.array([], pa.string()),
        "start_time": pa.array([], pa.timestamp("us")), "end_time": pa.array([], pa.timestamp("us")),
        "device_model": pa.array([], pa.string())})


def _write(engine: Engine, ws: Workspace, episodes: pa.Table) -> Path:
    engine.register_arrow("episodes_out", episodes)
    engine.create_view("episode_sessions", sql_file("opencem.twin", "episode_sessions"))
    subscribers = engine.query_arrow(sql_file("opencem.twin", "episode_subscribers"), step="episode_subscribers")
    for name in ("episode_sessions", "area_sessions", "device_sessions"):
        engine.drop(name)
    units = engine.query_arrow(sql_file("opencem.twin", "episode_units"), step="episode_units")
    engine.drop("episodes_out")
    with atomic_dir(ws.twin) as tmp:
        tmp.mkdir()
        for name in ("state_grid_hour", "state_grid_cell_hour"):
            engine.write_parquet(name, tmp / name, ["day"])
        pq.write_table(episodes, tmp / "episodes.parquet")
        pq.write_table(units, tmp / "episode_units.parquet")
        pq.write_table(subscribers, tmp / "episode_subscribers.parquet")
    return ws.twin


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
    files = Workspace(workspace).twin_files("state_grid_hour")
    with Workspace(workspace).session(tables=()) as engine:
        engine.register_parquet("state_grid_hour", files)
        rows = engine.query_arrow(sql_file("opencem.twin", "state_hexagons"), {"start": start, "end": end}, step="state_hexagons").to_pylist()
    feats = [{"type": "Feature", "id": r["grid"], "properties": r,
              "geometry": {"type": "Polygon", "coordinates": [_hex_polygon(r["grid"])]}} for r in rows]
    return {"type": "FeatureCollection", "features": feats}


def write_geojson(path: Path, collection: dict) -> None:
    atomic_write_text(path, json.dumps(collection, default=str))


def load_episodes(workspace: Path) -> pa.Table:
    f = Workspace(workspace).twin / "episodes.parquet"
    if not f.exists():
        raise FileNotFoundError(f"{f}: no episodes yet; run `opencem diagnose --workspace {workspace}` first")
    return pq.read_table(f)

