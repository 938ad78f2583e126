-- Per grid x hour, the session counts and sums the experience statistics are made of.
SELECT grid, hour, count(*) AS n,
  sum(CASE WHEN poor THEN 1 ELSE 0 END) AS poor, sum(CASE WHEN success THEN 0 ELSE 1 END) AS fail,
  count(throughput_dl_kbps) AS n_thp, sum(ln(greatest(throughput_dl_kbps, 1))) AS s_thp,
  count(rtt_ms) AS n_rtt, sum(ln(greatest(rtt_ms, 1))) AS s_rtt
FROM sess GROUP BY grid, hour
