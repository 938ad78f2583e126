-- One day's count, mean and sum of squared deviations (M2) of each statistic network_spread.sql pools
-- over the window (Chan's parallel combination), and its sessions, poor and failed sessions. As in every
-- spread of the twin, ln(greatest(x, 1)) of a session without the value is 0 (greatest skips a null).
SELECT * FROM
  (SELECT count(*) AS sessions, sum(CASE WHEN poor THEN 1 ELSE 0 END) AS poor, sum(CASE WHEN success THEN 0 ELSE 1 END) AS fail,
          count(thp) AS n_thp, avg(thp) AS mean_thp, var_pop(thp) * count(thp) AS m2_thp,
          count(rtt) AS n_rtt, avg(rtt) AS mean_rtt, var_pop(rtt) * count(rtt) AS m2_rtt
   FROM (SELECT poor, success, ln(greatest(throughput_dl_kbps, 1)) AS thp, ln(greatest(rtt_ms, 1)) AS rtt FROM sess)),
  (SELECT count(rsrp_dbm) AS n_rsrp, avg(rsrp_dbm) AS mean_rsrp, var_pop(rsrp_dbm) * count(rsrp_dbm) AS m2_rsrp,
          count(sinr_db) AS n_sinr, avg(sinr_db) AS mean_sinr, var_pop(sinr_db) * count(sinr_db) AS m2_sinr
   FROM mr)
