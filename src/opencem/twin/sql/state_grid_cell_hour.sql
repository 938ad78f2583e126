-- The twin state per grid x hour x serving cell: which cells carry a grid, and how.
SELECT grid, hour, cell_id, count(*) AS sessions, sum(CASE WHEN poor THEN 1 ELSE 0 END) AS poor_sessions,
       avg(prb_util_dl) AS prb_util_dl, avg(ul_interference_dbm) AS ul_interference_dbm,
       quantile_cont(rtt_ms, 0.5) AS rtt_ms_p50, CAST(hour AS DATE) AS day
FROM sess GROUP BY grid, hour, cell_id ORDER BY grid, hour, cell_id
