"""Twin state: every session and radio sample placed on the grid, summarised per grid x hour.

Tables (on the engine; :mod:`opencem.twin.run` writes them to the workspace):

- ``sess``: one row per session of the window with its grid, hour, poor flag, device and the serving
  cell's PM state in that 15 minutes (kept with the columns the window's steps read);
- ``mr``: one row per radio sample of the window with its grid and hour;
- ``sess_cell_hour``, ``cell_hour_rtt``, ``sess_device_hour`` and ``day_spread``: the sessions' sums per
  grid x hour x serving cell x load, each cell-hour's median RTT, the sessions per grid x hour x device
  model, and the day's moments of each statistic: the window's steps read these instead of every session;
- ``state_grid_hour``: subscribers, sessions, traffic, poor-session share, CEI (per service and
  overall, through the indicator tree), session KQI quantiles, RSRP / SINR quantiles, the serving
  cells' load and interference;
- ``state_grid_cell_hour``: the same grid x hour split by serving cell (which cells carry a grid).

A day's rows depend on that day's records, its PM, the subscribers and cells, and each cell's coverage
centre over the ``CENTROID_DAYS`` days up to it: nothing from the rest of the window. So each day is built
once and kept in the workspace (``twin_days/day=D/``) under a key of those inputs' files (name, size,
modification time), the SQL and the resolution; a later run over a window that holds it reads it back, and
builds only the days that are new or whose inputs changed. A first run goes through the same files, so a
run that reuses days gives the tables a run from nothing gives.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from ..engine import Engine
from ..engine.files import atomic_dir, atomic_write_text
from ..engine.pipeline import sql_file
from ..indicators.tree import Tree, cei_service_sql, cei_subscriber_sql, load_tree, poor_session_sql
from ..measure.steps import kqi_sql
from ..workspace import Workspace
from .cause import HOT_PRB
from .grid import SNAP, grid_table, place_sql


# the tables built per day, and the order of their rows (the session-level ones need none)
DAY_TABLES = {"sess": "", "mr": "", "sess_cell_hour": "", "cell_hour_rtt": "", "sess_device_hour": "", "day_spread": "",
              "state_grid_hour": "grid, hour", "state_grid_cell_hour": "grid, hour, cell_id"}
# the columns of a day's sessions that the window's steps read (episodes, devices, PM units): the KQI inputs
# served the day's own tables and are not kept
KEPT_SESSION_COLUMNS = ("subscriber_id", "start_time", "day", "hour", "grid", "cell_id", "device_model", "arpu_monthly",
                        "poor", "success", "throughput_dl_kbps", "rtt_ms")
CENTROID_DAYS = 7  # a cell's coverage centre: the GPS reports it served on the day and the 6 days before
KEY_FILE = "key.json"


def build_state(engine: Engine, ws: Workspace, tree: Tree, start: dt.date, end: dt.date, resolution: int,
                progress: Callable[[str], None] = lambda _m: None, days_folder: Path | None = None) -> dict[str, int]:
    """Build the twin's tables for days ``start`` <= day < ``end``, one day at a time, each kept in
    ``days_folder`` (default ``ws.twin_days``) and read back from there; returns the days built and reused.

    Going day by day keeps the medians and quantiles of one day in memory: over a whole window they outgrow
    DuckDB's memory limit and spill without bound (100k subscribers x 7 days under a 1 GB limit: out of
    memory after 18.5 GB of spill).
    """
    folder = days_folder or ws.twin_days
    code = _code_digest(engine.name, tree, resolution)
    days = [start + dt.timedelta(days=i) for i in range((end - start).days)]
    built = 0
    for i, day in enumerate(days):
        key = _day_key(ws, day, code)
        kept = folder / f"day={day}"
        if _read_key(kept) != key:
            progress(f"state of {day} ({i + 1}/{len(days)})")
            _build_day(engine, tree, day, resolution, kept, key)
            built += 1
        for name in DAY_TABLES:
            engine.register_parquet(f"{name}__{i}", [str(f) for f in sorted((kept / name).glob("*.parquet"))], hive_partitioning=False)
    for name, order in DAY_TABLES.items():
        union = " UNION ALL ".join(f"SELECT * FROM {name}__{i}" for i in range(len(days)))
        engine.create_view(name, f"SELECT * FROM ({union}) ORDER BY {order}" if order else union)
    for old in folder.glob("day=*") if folder.is_dir() else []:  # days before the window: a sliding window needs them no more
        if old.name[4:] < start.isoformat():
            shutil.rmtree(old, ignore_errors=True)
    return {"built": built, "reused": len(days) - built}


def _code_digest(engine_name: str, tree: Tree, resolution: int) -> str:
    """What a day's tables depend on besides the data: the engine, the resolution, the twin's SQL and the tree's."""
    sql = sorted((f.name, f.read_text()) for f in resources.files("opencem.twin").joinpath("sql").iterdir() if f.name.endswith(".sql"))
    tree_sql = [cei_service_sql(tree, "kqi_gh", keys="grid, day"), cei_subscriber_sql(tree, "cei_svc_gh", keys="grid, day"),
                poor_session_sql(load_tree()), kqi_sql("grid", "date_trunc('hour', start_time)", "sess")]
    doc = {"engine": engine_name, "resolution": resolution, "snap": SNAP, "centroid_days": CENTROID_DAYS, "hot_prb": HOT_PRB,
           "sess_columns": KEPT_SESSION_COLUMNS, "sql": sql, "tree": tree_sql}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _day_key(ws: Workspace, day: dt.date, code: str) -> str:
    """The key of one day's tables: the code's digest and every input file they read (name, size, mtime)."""
    parts = [(ws.lake / "xdr", [day]), (ws.measure / "kpi_cell_15min", [day]),
             (ws.lake / "radio_samples", [day - dt.timedelta(days=k) for k in range(CENTROID_DAYS)])]
    files = [f for folder, ds in parts for d in ds for f in sorted((folder / f"day={d}").glob("*.parquet"))]
    files += [f for table in ("subscribers", "cells") for f in sorted((ws.lake / table).rglob("*.parquet"))]
    stats = [(f"{f.parent.parent.name}/{f.parent.name}/{f.name}", st.st_size, st.st_mtime_ns) for f in files for st in [f.stat()]]
    return hashlib.sha256(json.dumps({"code": code, "files": stats}).encode()).hexdigest()


def _read_key(kept: Path) -> str | None:
    try:
        return json.loads((kept / KEY_FILE).read_text())["key"]
    except (OSError, ValueError, KeyError):
        return None


def _build_day(engine: Engine, tree: Tree, day: dt.date, resolution: int, kept: Path, key: str) -> None:
    """One day's DAY_TABLES, written to the folder ``kept`` with their key (replaced as a whole)."""
    window = {"start": day, "end": day + dt.timedelta(days=1)}
    engine.create_table("cell_centroid", sql_file("opencem.twin", "cell_centroid"),
                        {"start": day - dt.timedelta(days=CENTROID_DAYS - 1), "end": window["end"]})
    for name in ("mr_hour", "mr_day"):
        engine.create_table(name, sql_file("opencem.twin", name), window)
    engine.create_view("radio_keys", sql_file("opencem.twin", "radio_keys"))
    engine.register_arrow("grid_map", grid_table(engine, resolution, window))
    # a poor session is the default tree's, as everywhere else (the calibrated tree only reweights the CEI)
    engine.create_table("sess", sql_file("opencem.twin", "sess").format(
        placed=place_sql("xdr", "start_time"), poor_session=poor_session_sql(load_tree())), {**window, **SNAP})
    mr_placed = sql_file("opencem.twin", "mr_placed").format(placed=place_sql("radio_keys", "sample_time"))
    engine.create_table("mr", sql_file("opencem.twin", "mr").format(mr_placed=mr_placed), {**window, **SNAP})
    engine.create_table("sess_cell_hour", sql_file("opencem.twin", "sess_cell_hour"), {"hot_prb": HOT_PRB})
    engine.create_table("cell_hour_rtt", sql_file("opencem.twin", "cell_hour_rtt"))
    engine.create_table("sess_device_hour", sql_file("opencem.twin", "sess_device_hour"))
    engine.create_table("day_spread", sql_file("opencem.twin", "day_spread"))
    for name in ("radio_keys", "mr_hour", "mr_day", "cell_centroid"):
        engine.drop(name)

    engine.create_view("kqi_gh", kqi_sql("grid", "date_trunc('hour', start_time)", "sess"))
    engine.create_table("cei_svc_gh", cei_service_sql(tree, "kqi_gh", keys="grid, day"))
    engine.create_table("cei_gh", cei_subscriber_sql(tree, "cei_svc_gh", keys="grid, day"))
    ceis = ", ".join(f"c.cei_{s}" for s in tree.services)
    engine.create_table("state_grid_hour", sql_file("opencem.twin", "state_grid_hour").format(ceis=ceis))
    engine.create_table("state_grid_cell_hour", sql_file("opencem.twin", "state_grid_cell_hour"))
    engine.create_view("sess_kept", f"SELECT {', '.join(KEPT_SESSION_COLUMNS)} FROM sess")
    with atomic_dir(kept) as tmp:
        tmp.mkdir(parents=True)
        for name in DAY_TABLES:
            engine.write_parquet("sess_kept" if name == "sess" else name, tmp / name)
        atomic_write_text(tmp / KEY_FILE, json.dumps({"key": key, "day": day.isoformat()}) + "\n")
    for name in ("sess_kept", "kqi_gh", "cei_svc_gh", "cei_gh", "grid_map", *DAY_TABLES):
        engine.drop(name)
