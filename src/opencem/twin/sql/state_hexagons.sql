-- The twin state summed per grid over $start <= hour < $end.
SELECT grid, sum(sessions) AS sessions, max(subscribers) AS subscribers_max_hour, sum(poor_sessions) AS poor_sessions,
       round(sum(poor_sessions) / sum(sessions), 4) AS poor_share, round(sum(cei * sessions) / sum(sessions), 2) AS cei,
       round(avg(rsrp_dbm_p50), 1) AS rsrp_dbm_p50, round(avg(prb_util_dl), 3) AS prb_util_dl
FROM state_grid_hour
WHERE hour >= $start AND hour < $end GROUP BY grid ORDER BY grid
