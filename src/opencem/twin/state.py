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

from ..engine import Engine
from ..engine.pipeline import sql_file
from ..geo import POSITION_DECIMALS
from ..indicators.tree import Tree, cei_service_sql, cei_subscriber_sql, load_tree, poor_session_sql
from ..measure.steps import kqi_sql
from .grid import grid_table, place_sql, position_tables


def build_state(engine: Engine, tree: Tree, start: dt.date, end: dt.date, resolution: int) -> None:
    """Build the twin's tables for days ``start`` <= day < ``end``."""
    window = {"start": start, "end": end}
    snap = {"decimals": POSITION_DECIMALS}
    position_tables(engine, window)
    engine.create_table("sess_placed", place_sql("xdr", "start_time"), window)
    engine.create_view("radio_keys", sql_file("opencem.twin", "radio_keys"))
    engine.create_table("mr_placed", sql_file("opencem.twin", "mr_placed").format(placed=place_sql("radio_keys", "sample_time")), window)
    engine.register_arrow("grid_map", grid_table(engine, resolution))
    # a poor session is the default tree's, as everywhere else (the calibrated tree only reweights the CEI)
    engine.create_table("sess", sql_file("opencem.twin", "sess").format(poor_session=poor_session_sql(load_tree())), snap)
    engine.create_table("mr", sql_file("opencem.twin", "mr"), snap)
    for name in ("sess_placed", "mr_placed", "radio_keys"):
        engine.drop(name)

    engine.create_view("kqi_gh", kqi_sql("grid", "date_trunc('hour', start_time)", "sess"))
    engine.create_table("cei_svc_gh", cei_service_sql(tree, "kqi_gh", keys="grid, day"))
    engine.create_table("cei_gh", cei_subscriber_sql(tree, "cei_svc_gh", keys="grid, day"))
    ceis = ", ".join(f"c.cei_{s}" for s in tree.services)
    engine.create_table("state_grid_hour", sql_file("opencem.twin", "state_grid_hour").format(ceis=ceis))
    engine.create_table("state_grid_cell_hour", sql_file("opencem.twin", "state_grid_cell_hour"))
