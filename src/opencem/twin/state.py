"""Twin state: every session and radio sample placed on the grid, summarised per grid x hour.

Tables (on the engine; :mod:`opencem.twin.run` writes them to the workspace):

- ``sess``: one row per session of the window with its grid, hour, poor flag, device and the serving
  cell's PM state in that 15 minutes;
- ``mr``: one row per radio sample of the window with its grid and hour;
- ``state_grid_hour``: subscribers, sessions, traffic, poor-session share, CEI (per service and
  overall, through the indicator tree), session KQI quantiles, RSRP / SINR quantiles, the serving
  cells' load and interference;
- ``state_grid_cell_hour``: the same grid x hour split by serving cell (which cells carry a grid).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from ..engine import Engine
from ..engine.pipeline import sql_file
from ..indicators.tree import Tree, cei_service_sql, cei_subscriber_sql, load_tree, poor_session_sql
from ..measure.steps import kqi_sql
from .grid import SNAP, grid_table, place_sql


# the tables built per day, and the order of their rows (the session-level ones need none)
DAY_TABLES = {"sess": "", "mr": "", "state_grid_hour": "grid, hour", "state_grid_cell_hour": "grid, hour, cell_id"}


def build_state(engine: Engine, tree: Tree, start: dt.date, end: dt.date, resolution: int,
                progress: Callable[[str], None] = lambda _m: None) -> None:
    """Build the twin's tables for days ``start`` <= day < ``end``, one day at a time.

    Every table is keyed by an hour or a day, so a day's rows depend on that day's records only (and on
    each cell's coverage centre, taken over the whole window). Going day by day keeps the medians and
    quantiles of one day in memory: over a whole window they outgrow DuckDB's memory limit and spill
    without bound (100k subscribers x 7 days under a 1 GB limit: out of memory after 18.5 GB of spill).
    """
    engine.create_table("cell_centroid", sql_file("opencem.twin", "cell_centroid"), {"start": start, "end": end})
    days = [start + dt.timedelta(days=i) for i in range((end - start).days)]
    for i, day in enumerate(days):
        progress(f"state of {day} ({i + 1}/{len(days)})")
        _build_day(engine, tree, {"start": day, "end": day + dt.timedelta(days=1)}, resolution, f"__{i}")
    for name, order in DAY_TABLES.items():
        union = " UNION ALL ".join(f"SELECT * FROM {name}__{i}" for i in range(len(days)))
        engine.create_view(name, f"SELECT * FROM ({union}) ORDER BY {order}" if order else union)


def _build_day(engine: Engine, tree: Tree, window: dict, resolution: int, suffix: str) -> None:
    """One day's DAY_TABLES, each as ``name + suffix`` (the day's SQL reads them through views ``name``)."""
    def create(name: str, sql: str, params: dict | None = None) -> None:
        engine.create_table(name + suffix, sql, params)
        engine.create_view(name, f"SELECT * FROM {name + suffix}")

    for name in ("mr_hour", "mr_day"):
        engine.create_table(name, sql_file("opencem.twin", name), window)
    engine.create_table("sess_placed", place_sql("xdr", "start_time"), window)
    engine.create_view("radio_keys", sql_file("opencem.twin", "radio_keys"))
    engine.create_table("mr_placed", sql_file("opencem.twin", "mr_placed").format(placed=place_sql("radio_keys", "sample_time")), window)
    engine.register_arrow("grid_map", grid_table(engine, resolution))
    # a poor session is the default tree's, as everywhere else (the calibrated tree only reweights the CEI)
    create("sess", sql_file("opencem.twin", "sess").format(poor_session=poor_session_sql(load_tree())), SNAP)
    create("mr", sql_file("opencem.twin", "mr"), SNAP)
    for name in ("sess_placed", "mr_placed", "radio_keys", "mr_hour", "mr_day"):
        engine.drop(name)

    engine.create_view("kqi_gh", kqi_sql("grid", "date_trunc('hour', start_time)", "sess"))
    engine.create_table("cei_svc_gh", cei_service_sql(tree, "kqi_gh", keys="grid, day"))
    engine.create_table("cei_gh", cei_subscriber_sql(tree, "cei_svc_gh", keys="grid, day"))
    ceis = ", ".join(f"c.cei_{s}" for s in tree.services)
    create("state_grid_hour", sql_file("opencem.twin", "state_grid_hour").format(ceis=ceis))
    create("state_grid_cell_hour", sql_file("opencem.twin", "state_grid_cell_hour"))
    for name in ("kqi_gh", "cei_svc_gh", "cei_gh", "grid_map", *DAY_TABLES):
        engine.drop(name)
