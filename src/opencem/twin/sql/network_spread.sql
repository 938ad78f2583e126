-- Network-wide spread of each statistic over the window (the variance of a mean under "no change"), pooled
-- from each day's count, mean and M2 (day_spread.sql) around the window's mean (m), and the network's poor
-- and failed shares (the floors of the share baselines).
WITH m AS (SELECT sum(n_thp * mean_thp) / sum(n_thp) AS thp, sum(n_rtt * mean_rtt) / sum(n_rtt) AS rtt,
                  sum(n_rsrp * mean_rsrp) / sum(n_rsrp) AS rsrp, sum(n_sinr * mean_sinr) / sum(n_sinr) AS sinr FROM day_spread)
SELECT sqrt(sum(d.m2_thp + d.n_thp * pow(d.mean_thp - m.thp, 2)) / (sum(d.n_thp) - 1)) AS sd_thp,
       sqrt(sum(d.m2_rtt + d.n_rtt * pow(d.mean_rtt - m.rtt, 2)) / (sum(d.n_rtt) - 1)) AS sd_rtt,
       sum(d.poor) * 1E0 / sum(d.sessions) AS p_poor, sum(d.fail) * 1E0 / sum(d.sessions) AS p_fail,
       sqrt(sum(d.m2_rsrp + d.n_rsrp * pow(d.mean_rsrp - m.rsrp, 2)) / (sum(d.n_rsrp) - 1)) AS sd_rsrp,
       sqrt(sum(d.m2_sinr + d.n_sinr * pow(d.mean_sinr - m.sinr, 2)) / (sum(d.n_sinr) - 1)) AS sd_sinr
FROM day_spread d CROSS JOIN m
