-- The twin's state of every grid over [$start, $end): sums and session-weighted means of the hours.
SELECT grid,
       max(subscribers) AS subscribers_max_hour,
       sum(sessions) AS sessions,
       sum(poor_sessions) AS poor_sessions,
       sum(poor_sessions) / nullif(sum(sessions), 0) AS poor_share,
       sum(fail_share * sessions) / nullif(sum(sessions), 0) AS fail_share,
       sum(cei * sessions) / nullif(sum(CASE WHEN cei IS NOT NULL THEN sessions END), 0) AS cei,
       sum(rtt_ms_p50 * sessions) / nullif(sum(CASE WHEN rtt_ms_p50 IS NOT NULL THEN sessions END), 0) AS rtt_ms_p50,
       sum(thp_dl_kbps_p50 * sessions) / nullif(sum(CASE WHEN thp_dl_kbps_p50 IS NOT NULL THEN sessions END), 0) AS thp_dl_kbps_p50,
       avg(prb_util_dl) AS prb_util_dl,
       avg(rsrp_dbm_p50) AS rsrp_dbm_p50,
       avg(sinr_db_p50) AS sinr_db_p50,
       count(*) AS hours
FROM state_grid_hour
WHERE hour >= $start AND hour < $end
GROUP BY grid
