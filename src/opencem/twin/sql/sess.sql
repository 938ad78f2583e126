-- One row per session of the window: its grid and hour, whether it was poor (the tree's conditions), the
-- subscriber's device and ARPU, and the serving cell's PM state in that 15 minutes.
SELECT s.* EXCLUDE (pos_lat, pos_lon), g.grid, date_trunc('hour', s.start_time) AS hour,
       ({poor_session}) AS poor, sub.device_model, sub.arpu_monthly,
       k.prb_util_dl, k.ul_interference_dbm, k.cqi_mean
FROM ({placed}) s
JOIN grid_map g ON g.lat_key = CAST(round(s.pos_lat * $scale) AS BIGINT) AND g.lon_key = CAST(round(s.pos_lon * $scale) AS BIGINT)
LEFT JOIN subscribers sub USING (subscriber_id)
LEFT JOIN kpi_cell_15min k ON k.cell_id = s.cell_id AND k.period_start = date_trunc('hour', s.start_time) + (minute(s.start_time) // 15) * INTERVAL 15 MINUTE
