"""Twin state: every session and radio sample placed on the grid, summarised per grid x hour.

Tables (temp tables on the connection; :mod:`opencem.twin.run` writes them to the workspace):

- ``sess``: one row per session of the window with its grid, hour, poor flag, device and the serving
  cell's PM state in that 15 minutes;
- ``state_grid_hour``: subscribers, sessions, traffic, poor-session share, CEI (per service and
  overall, through the indicator tree), session KQI quantiles, RSRP / SINR quantiles, the serving
  cells' load and interference;
- ``state_grid_cell_hour``: the same grid x hour split by serving cell (which cells carry a grid).
"""

from __future__ import annotations

import datetime as dt

from ..indicators.tree import Tree, cei_service_sql, cei_subscriber_sql
from ..measure.steps import kqi_sql
from ..nps.score import POOR_SESSION
from .grid import grid_table, place_sql, position_tables_sql


def build_state(con, tree: Tree, start: dt.date, end: dt.date, resolution: int) -> None:
    """Build the twin's temp tables for days ``start`` <= day < ``end``."""
    win_x = f"start_time >= TIMESTAMP '{start}' AND start_time < TIMESTAMP '{end}'"
    win_r = f"sample_time >= TIMESTAMP '{start}' AND sample_time < TIMESTAMP '{end}'"
    for ddl in position_tables_sql(win_r):
        con.sql(ddl)
    con.sql(f"CREATE OR REPLACE TEMP TABLE sess0 AS {place_sql(f'(SELECT * FROM xdr WHERE {win_x})', 'start_time')}")
    con.sql(f"""CREATE OR REPLACE TEMP TABLE mr0 AS
        SELECT r.* REPLACE (COALESCE(r.lat, p.pos_lat) AS lat, COALESCE(r.lon, p.pos_lon) AS lon),
               CASE WHEN r.lat IS NOT NULL THEN 'gps' ELSE p.position_source END AS position_source
        FROM (SELECT * FROM radio_samples WHERE {win_r}) r
        JOIN ({place_sql(f'(SELECT DISTINCT subscriber_id, cell_id, sample_time FROM radio_samples WHERE {win_r})', 'sample_time')}) p
          USING (subscriber_id, cell_id, sample_time)""")
    con.register("grid_map_in", grid_table(con, "(SELECT pos_lat AS lat, pos_lon AS lon FROM sess0 UNION ALL SELECT lat, lon FROM mr0)",
                                           resolution))
    con.sql("CREATE OR REPLACE TEMP TABLE grid_map AS SELECT * FROM grid_map_in")
    con.unregister("grid_map_in")
    con.sql(f"""CREATE OR REPLACE TEMP TABLE sess AS
        SELECT s.* EXCLUDE (pos_lat, pos_lon), g.grid, date_trunc('hour', s.start_time) AS hour,
               ({POOR_SESSION}) AS poor, sub.device_model, sub.arpu_monthly,
               k.prb_util_dl, k.ul_interference_dbm, k.cqi_mean
        FROM sess0 s
        JOIN grid_map g ON g.lat = round(s.pos_lat, 4) AND g.lon = round(s.pos_lon, 4)
        LEFT JOIN subscribers sub USING (subscriber_id)
        LEFT JOIN kpi_cell_15min k ON k.cell_id = s.cell_id AND k.period_start = time_bucket(INTERVAL 15 MINUTE, s.start_time)""")
    con.sql("""CREATE OR REPLACE TEMP TABLE mr AS
        SELECT r.*, g.grid, date_trunc('hour', r.sample_time) AS hour FROM mr0 r
        JOIN grid_map g ON g.lat = round(r.lat, 4) AND g.lon = round(r.lon, 4)""")
    con.sql("DROP TABLE sess0; DROP TABLE mr0")

    hourly = kqi_sql("grid", "date_trunc('hour', start_time)", "sess")
    con.sql(f"CREATE OR REPLACE TEMP VIEW kqi_gh AS {hourly}")
    con.sql(f"CREATE OR REPLACE TEMP TABLE cei_svc_gh AS {cei_service_sql(tree, 'kqi_gh', keys='grid, day')}")
    con.sql(f"CREATE OR REPLACE TEMP TABLE cei_gh AS {cei_subscriber_sql(tree, 'cei_svc_gh', keys='grid, day')}")
    ceis = ", ".join(f"c.cei_{s}" for s in tree.services)
    con.sql(f"""CREATE OR REPLACE TEMP TABLE state_grid_hour AS
      WITH s AS (
        SELECT grid, hour, count(DISTINCT subscriber_id) AS subscribers, count(*) AS sessions,
          sum(volume_dl_bytes + volume_ul_bytes) / 1E6 AS volume_mb,
          sum(CASE WHEN poor THEN 1 ELSE 0 END) AS poor_sessions,
          avg(CASE WHEN poor THEN 1E0 ELSE 0E0 END) AS poor_share,
          avg(CASE WHEN NOT success THEN 1E0 ELSE 0E0 END) AS fail_share,
          avg(CASE WHEN service = 'web' THEN CASE WHEN success THEN 0E0 ELSE 1E0 END END) AS web_fail_share,
          quantile_cont(rtt_ms, 0.5) AS rtt_ms_p50, quantile_cont(rtt_ms, 0.9) AS rtt_ms_p90,
          quantile_cont(throughput_dl_kbps, 0.1) AS thp_dl_kbps_p10, quantile_cont(throughput_dl_kbps, 0.5) AS thp_dl_kbps_p50,
          avg(CASE WHEN call_dropped THEN 1E0 WHEN call_dropped IS NOT NULL THEN 0E0 END) AS call_drop_rate,
          avg(prb_util_dl) AS prb_util_dl, max(prb_util_dl) AS prb_util_dl_max,
          avg(ul_interference_dbm) AS ul_interference_dbm,
          first(cell_id ORDER BY n_cell DESC, cell_id) AS main_cell, count(DISTINCT cell_id) AS cells
        FROM (SELECT *, count(*) OVER (PARTITION BY grid, hour, cell_id) AS n_cell FROM sess)
        GROUP BY grid, hour),
      r AS (
        SELECT grid, hour, count(*) AS mr_samples,
          quantile_cont(rsrp_dbm, 0.5) AS rsrp_dbm_p50, quantile_cont(rsrp_dbm, 0.1) AS rsrp_dbm_p10,
          quantile_cont(sinr_db, 0.5) AS sinr_db_p50, quantile_cont(sinr_db, 0.1) AS sinr_db_p10
        FROM mr GROUP BY grid, hour)
      SELECT s.*, c.cei, {ceis}, r.mr_samples, r.rsrp_dbm_p50, r.rsrp_dbm_p10, r.sinr_db_p50, r.sinr_db_p10,
             CAST(s.hour AS DATE) AS day
      FROM s LEFT JOIN cei_gh c ON c.grid = s.grid AND c.day = s.hour
      LEFT JOIN r ON r.grid = s.grid AND r.hour = s.hour
      ORDER BY s.grid, s.hour""")
    con.sql("""CREATE OR REPLACE TEMP TABLE state_grid_cell_hour AS
      SELECT grid, hour, cell_id, count(*) AS sessions, sum(CASE WHEN poor THEN 1 ELSE 0 END) AS poor_sessions,
             avg(prb_util_dl) AS prb_util_dl, avg(ul_interference_dbm) AS ul_interference_dbm,
             quantile_cont(rtt_ms, 0.5) AS rtt_ms_p50, CAST(hour AS DATE) AS day
      FROM sess GROUP BY grid, hour, cell_id ORDER BY grid, hour, cell_id""")
