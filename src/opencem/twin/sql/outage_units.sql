-- Grid-hours of an outage seen in PM: the hours in which a cell that had reported PM sent none for a period
-- (kpi_cell_15min.pm_reported = false), crossed with the grids its site usually carries (the site's cells hold
-- at least $min_share of the grid's sessions in the window). A real OSS exports nothing for a cell that is down,
-- and its users make no session to be poor in, so these grid-hours join the anomalous ones as they are.
WITH down AS (
  SELECT DISTINCT c.site_id, date_trunc('hour', k.period_start) AS hour
  FROM kpi_cell_15min k JOIN cells c ON c.cell_id = k.cell_id
  WHERE NOT k.pm_reported AND k.period_start >= $start AND k.period_start < $end),
grid_sessions AS (SELECT grid, count(*) AS n FROM sess GROUP BY grid),
usual AS (
  SELECT s.grid, c.site_id, count(*) * 1E0 / any_value(g.n) AS share
  FROM sess s JOIN cells c ON c.cell_id = s.cell_id JOIN grid_sessions g ON g.grid = s.grid
  GROUP BY s.grid, c.site_id)
SELECT DISTINCT u.grid, d.hour FROM down d JOIN usual u ON u.site_id = d.site_id
WHERE u.share >= $min_share
ORDER BY d.hour, u.grid
