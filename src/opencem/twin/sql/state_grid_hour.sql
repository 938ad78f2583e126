-- The twin state per grid x hour: usage, poor / failed shares, session KQI quantiles, the CEI overall and
-- per service, RSRP / SINR quantiles and the serving cells' load and interference.
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
    count(DISTINCT cell_id) AS cells
  FROM sess GROUP BY grid, hour),
m AS (  -- the cell that served most sessions, from the day's sums per grid x hour x cell
  SELECT grid, hour, first(cell_id ORDER BY n DESC, cell_id) AS main_cell
  FROM (SELECT grid, hour, cell_id, sum(n) AS n FROM sess_cell_hour GROUP BY grid, hour, cell_id) GROUP BY grid, hour),
r AS (
  SELECT grid, hour, count(*) AS mr_samples,
    quantile_cont(rsrp_dbm, 0.5) AS rsrp_dbm_p50, quantile_cont(rsrp_dbm, 0.1) AS rsrp_dbm_p10,
    quantile_cont(sinr_db, 0.5) AS sinr_db_p50, quantile_cont(sinr_db, 0.1) AS sinr_db_p10
  FROM mr GROUP BY grid, hour)
SELECT s.* EXCLUDE (cells), m.main_cell, s.cells, c.cei, {ceis}, r.mr_samples, r.rsrp_dbm_p50, r.rsrp_dbm_p10, r.sinr_db_p50, r.sinr_db_p10,
       CAST(s.hour AS DATE) AS day
FROM s JOIN m USING (grid, hour) LEFT JOIN cei_gh c ON c.grid = s.grid AND c.day = s.hour
LEFT JOIN r ON r.grid = s.grid AND r.hour = s.hour
ORDER BY s.grid, s.hour
