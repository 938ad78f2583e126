"""Place radio samples and sessions on an H3 grid.

A position comes from the UE's own GPS report (MDT) when one exists on the same serving cell in the
same hour, else that day; otherwise from the serving cell's coverage: the median GPS position of all
reports the cell served (its measured centroid), else the site itself.
"""

from __future__ import annotations

import pyarrow as pa

from ..engine import Engine
from ..engine.pipeline import sql_file
from ..geo import POSITION_DECIMALS, grid_of

# the SQL's snapping of positions: integer keys round(x * scale)
SNAP = {"scale": 10.0 ** POSITION_DECIMALS}


def grid_table(engine: Engine, resolution: int, window: dict) -> pa.Table:
    """(lat_key, lon_key, grid) for every snapped position a session or radio sample of the ``window`` (start,
    end) can be placed at: the GPS medians ``mr_hour`` and ``mr_day``, the coverage centres ``cell_centroid``
    and the samples' own GPS."""
    t = engine.query_arrow(sql_file("opencem.twin", "grid_positions"), {**window, **SNAP}, step="grid_positions")
    lat, lon = (t[k].to_numpy() / SNAP["scale"] for k in ("lat_key", "lon_key"))
    return pa.table({"lat_key": t["lat_key"], "lon_key": t["lon_key"], "grid": pa.array(grid_of(lat, lon, resolution), pa.string())})


def place_sql(source: str, time_col: str) -> str:
    """Rows of the relation ``source`` whose ``time_col`` is in [$start, $end), with ``pos_lat``/``pos_lon``
    filled and ``position_source`` saying where they came from.

    Needs the GPS medians ``mr_hour`` and ``mr_day`` and the cells' coverage centres ``cell_centroid``.
    """
    return sql_file("opencem.twin", "place").format(source=source, time_col=time_col)
