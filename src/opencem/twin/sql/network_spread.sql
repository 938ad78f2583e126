-- Network-wide spread of each statistic (the variance of a mean under "no change") and the network's
-- poor and failed shares (the floors of the share baselines).
SELECT * FROM
  (SELECT stddev(ln(greatest(throughput_dl_kbps, 1))) AS sd_thp, stddev(ln(greatest(rtt_ms, 1))) AS sd_rtt,
          avg(CASE WHEN poor THEN 1E0 ELSE 0E0 END) AS p_poor, avg(CASE WHEN success THEN 0E0 ELSE 1E0 END) AS p_fail
   FROM sess),
  (SELECT stddev(rsrp_dbm) AS sd_rsrp, stddev(sinr_db) AS sd_sinr FROM mr)
