-- Per pooled grid x hour (the grid with its neighbours, table nb): the statistics, their baseline (the
-- $q_low / $q_high quantile of the grid's own values at that hour of day and day type), the excess over
-- the baseline with its variance under "no change", and z over each window of hours.
-- Grid-hours with fewer than $min_sessions pooled sessions are not tested.
WITH p AS (
  SELECT nb.grid, s.hour, sum(s.n) AS n, sum(s.poor) AS poor, sum(s.fail) AS fail,
         sum(s.n_thp) AS n_thp, sum(s.s_thp) / nullif(sum(s.n_thp), 0) AS thp,
         sum(s.n_rtt) AS n_rtt, sum(s.s_rtt) / nullif(sum(s.n_rtt), 0) AS rtt
  FROM nb JOIN gh_stats s ON s.grid = nb.nb GROUP BY nb.grid, s.hour),
pr AS (
  SELECT nb.grid, r.hour, sum(r.n_mr) AS n_mr, sum(r.s_rsrp) / sum(r.n_mr) AS rsrp, sum(r.s_sinr) / sum(r.n_mr) AS sinr
  FROM nb JOIN gh_radio r ON r.grid = nb.nb GROUP BY nb.grid, r.hour),
d AS (SELECT p.*, pr.n_mr, pr.rsrp, pr.sinr, hour(p.hour) AS hod, isodow(p.hour) >= 6 AS weekend,
             p.poor / p.n AS poor_share, p.fail / p.n AS fail_share
      FROM p LEFT JOIN pr USING (grid, hour)),
b AS (
  SELECT grid, hod, weekend,
    quantile_cont(poor_share, $q_low) AS b_poor, quantile_cont(fail_share, $q_low) AS b_fail,
    quantile_cont(thp, $q_high) AS b_thp, quantile_cont(rtt, $q_low) AS b_rtt,
    quantile_cont(rsrp, $q_high) AS b_rsrp, quantile_cont(sinr, $q_high) AS b_sinr
  FROM d WHERE n >= $min_sessions GROUP BY ALL),
e AS (
  SELECT d.grid, d.hour, d.n, d.poor, d.poor_share, d.fail_share, d.thp, d.rtt, d.n_mr, d.rsrp, d.sinr,
    b.b_poor, b.b_fail, b.b_thp, b.b_rtt, b.b_rsrp, b.b_sinr,
    -- a share's baseline is floored near the network's rate ($floor_poor, $floor_fail)
    d.poor - d.n * greatest(b.b_poor, $floor_poor) AS e_poor,
    d.n * greatest(b.b_poor, $floor_poor) * (1 - greatest(b.b_poor, $floor_poor)) AS v_poor,
    d.fail - d.n * greatest(b.b_fail, $floor_fail) AS e_fail,
    d.n * greatest(b.b_fail, $floor_fail) * (1 - greatest(b.b_fail, $floor_fail)) AS v_fail,
    coalesce(d.n_thp * (b.b_thp - d.thp), 0) AS e_thp, greatest(d.n_thp, 1) * $var_thp AS v_thp,
    coalesce(d.n_rtt * (d.rtt - b.b_rtt), 0) AS e_rtt, greatest(d.n_rtt, 1) * $var_rtt AS v_rtt,
    coalesce(d.n_mr * (b.b_rsrp - d.rsrp), 0) AS e_rsrp, greatest(d.n_mr, 1) * $var_rsrp AS v_rsrp,
    coalesce(d.n_mr * (b.b_sinr - d.sinr), 0) AS e_sinr, greatest(d.n_mr, 1) * $var_sinr AS v_sinr
  FROM d JOIN b USING (grid, hod, weekend)
  WHERE d.n >= $min_sessions)
SELECT e.*, {windows}
FROM e
WINDOW {frames}
ORDER BY e.grid, e.hour
