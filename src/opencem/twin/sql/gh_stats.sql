-- Per grid x hour, the session counts and sums the experience statistics are made of (from the days'
-- sess_cell_hour sums).
SELECT grid, hour, sum(n) AS n, sum(poor) AS poor, sum(fail) AS fail,
  sum(thp_n) AS n_thp, sum(thp_sum) AS s_thp, sum(rtt_n) AS n_rtt, sum(rtt_sum) AS s_rtt
FROM sess_cell_hour GROUP BY grid, hour
