"""Place radio samples and sessions on an H3 grid.

A position comes from the UE's own GPS report (MDT) when one exists on the same serving cell in the
same hour, else that day; otherwise from the serving cell's coverage: the median GPS position of all
reports the cell served (its measured centroid), else the site itself.
"""

from __future__ import annotations

import pyarrow as pa

from ..geo import POSITION_DECIMALS, grid_of

def grid_table(con, positions: str, resolution: int) -> pa.Table:
    """(lat, lon, grid) for the distinct snapped positions of the relation ``positions`` (columns lat, lon)."""
    t = con.sql(f"""SELECT DISTINCT round(lat, {POSITION_DECIMALS}) AS lat, round(lon, {POSITION_DECIMALS}) AS lon
                    FROM {positions} WHERE lat IS NOT NULL AND lon IS NOT NULL""").to_arrow_table()
    lat, lon = t["lat"].to_numpy(), t["lon"].to_numpy()
    return pa.table({"lat": lat, "lon": lon, "grid": pa.array(grid_of(lat, lon, resolution), pa.string())})


def place_sql(source: str, time_col: str) -> str:
    """``source`` rows with ``lat``/``lon`` filled and ``position_source`` saying where they came from.

    Needs tables ``mr_hour`` / ``mr_day`` (per subscriber x cell x hour / day GPS medians) and
    ``cell_centroid`` (per cell), built by :func:`position_tables_sql`.
    """
    return f"""
      SELECT s.*,
        COALESCE(h.lat, d.lat, c.lat) AS pos_lat, COALESCE(h.lon, d.lon, c.lon) AS pos_lon,
        CASE WHEN h.lat IS NOT NULL THEN 'gps_hour' WHEN d.lat IS NOT NULL THEN 'gps_day' ELSE 'cell' END AS position_source
      FROM {source} s
      LEFT JOIN mr_hour h ON h.subscriber_id = s.subscriber_id AND h.cell_id = s.cell_id
                          AND h.hour = date_trunc('hour', s.{time_col})
      LEFT JOIN mr_day d ON d.subscriber_id = s.subscriber_id AND d.cell_id = s.cell_id
                         AND d.day = CAST(s.{time_col} AS DATE)
      LEFT JOIN cell_centroid c ON c.cell_id = s.cell_id"""


def position_tables_sql(where: str) -> list[str]:
    """DDL for the GPS medians the placement joins on (radio samples filtered by ``where``)."""
    gps = f"SELECT * FROM radio_samples WHERE lat IS NOT NULL AND {where}"
    return [
        f"""CREATE OR REPLACE TEMP TABLE mr_hour AS SELECT subscriber_id, cell_id, date_trunc('hour', sample_time) AS hour,
              median(lat) AS lat, median(lon) AS lon FROM ({gps}) GROUP BY ALL""",
        f"""CREATE OR REPLACE TEMP TABLE mr_day AS SELECT subscriber_id, cell_id, CAST(sample_time AS DATE) AS day,
              median(lat) AS lat, median(lon) AS lon FROM ({gps}) GROUP BY ALL""",
        f"""CREATE OR REPLACE TEMP TABLE cell_centroid AS
            SELECT c.cell_id, COALESCE(g.lat, c.lat) AS lat, COALESCE(g.lon, c.lon) AS lon
            FROM cells c LEFT JOIN (SELECT cell_id, median(lat) AS lat, median(lon) AS lon FROM ({gps}) GROUP BY ALL) g
              USING (cell_id)""",
    ]
