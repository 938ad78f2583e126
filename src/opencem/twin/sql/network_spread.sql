-- Network-wide spread of each statistic over the window (the variance of a mean under "no change"), pooled
-- from each day's count, mean and M2 (day_spread.sql), and the network's poor and failed shares (the floors
-- of the share baselines).
SELECT sd_thp, sd_rtt, p_poor, p_fail, sd_rsrp, sd_sinr FROM
  (SELECT sum(poor) * 1E0 / sum(sessions) AS p_poor, sum(fail) * 1E0 / sum(sessions) AS p_fail FROM day_spread),
  (SELECT sqrt(sum(m2_thp + n_thp * pow(mean_thp - (SELECT sum(n_thp * mean_thp) / sum(n_thp) FROM day_spread), 2)) / (sum(n_thp) - 1)) AS sd_thp,
       sqrt(sum(m2_rtt + n_rtt * pow(mean_rtt - (SELECT sum(n_rtt * mean_rtt) / sum(n_rtt) FROM day_spread), 2)) / (sum(n_rtt) - 1)) AS sd_rtt,
       sqrt(sum(m2_rsrp + n_rsrp * pow(mean_rsrp - (SELECT sum(n_rsrp * mean_rsrp) / sum(n_rsrp) FROM day_spread), 2)) / (sum(n_rsrp) - 1)) AS sd_rsrp,
       sqrt(sum(m2_sinr + n_sinr * pow(mean_sinr - (SELECT sum(n_sinr * mean_sinr) / sum(n_sinr) FROM day_spread), 2)) / (sum(n_sinr) - 1)) AS sd_sinr
   FROM day_spread)
