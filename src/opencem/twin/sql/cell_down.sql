-- The 15-minute periods in which a cell was down, as its PM shows it ($start <= period < $end):
-- * no_pm: a cell that had reported PM sent no row (kpi_cell_15min.pm_reported = false; a real OSS exports
--   nothing for a cell that is down);
-- * no_traffic: the cell reported, but with no connected user and no volume, at an hour of day at which it
--   usually carries at least one user (its median over the window): a sleeping or off-air cell whose OSS
--   still writes zero counters. Quiet night hours never qualify.
WITH usual AS (
  SELECT cell_id, hour(period_start) AS hod, median(rrc_users_mean) AS users
  FROM kpi_cell_15min WHERE pm_reported AND period_start >= $start AND period_start < $end GROUP BY ALL)
SELECT k.cell_id, k.period_start,
       CASE WHEN k.pm_reported THEN 'no_traffic' ELSE 'no_pm' END AS reason
FROM kpi_cell_15min k LEFT JOIN usual u ON u.cell_id = k.cell_id AND u.hod = hour(k.period_start)
WHERE k.period_start >= $start AND k.period_start < $end
  AND (NOT k.pm_reported OR (k.rrc_users_mean = 0 AND coalesce(k.volume_dl_mb, 0) = 0 AND u.users >= 1))
