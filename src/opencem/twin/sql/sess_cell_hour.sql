-- One day's sessions summed per grid x hour x serving cell x load (cool: the cell below $hot_prb DL PRB
-- utilisation in that 15 minutes, or without PM): the sums and counts the window's steps average
-- (episode_evidence.sql, gh_stats.sql, cell_events.sql), so they read these rows and not every session
-- again. ln(greatest(x, 1)) is 0 for a session without the value, which the counts of the value leave out.
SELECT grid, hour, cell_id, coalesce(prb_util_dl, 0) < $hot_prb AS cool, count(*) AS n,
       sum(CASE WHEN poor THEN 1 ELSE 0 END) AS poor, sum(CASE WHEN success THEN 0 ELSE 1 END) AS fail,
       sum(prb_util_dl) AS prb_sum, count(prb_util_dl) AS prb_n,
       sum(ul_interference_dbm) AS ul_sum, count(ul_interference_dbm) AS ul_n,
       sum(ln(greatest(rtt_ms, 1))) AS rtt_sum, count(rtt_ms) AS rtt_n,
       sum(ln(greatest(throughput_dl_kbps, 1))) AS thp_sum, count(throughput_dl_kbps) AS thp_n
FROM sess GROUP BY grid, hour, cell_id, cool
