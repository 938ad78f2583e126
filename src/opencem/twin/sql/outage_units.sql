-- Grid-hours of an outage seen in PM: the hours in which a cell was down (cell_down: no PM, or no traffic when
-- it usually has some), crossed with the grids its site usually carries (the site's cells hold at least
-- $min_share of the grid's sessions in the window). A down cell's users make no session to be poor in, so
-- these grid-hours join the anomalous ones as they are.
WITH down AS (
  SELECT DISTINCT c.site_id, date_trunc('hour', d.period_start) AS hour
  FROM cell_down d JOIN cells c ON c.cell_id = d.cell_id),
grid_sessions AS (SELECT grid, count(*) AS n FROM sess GROUP BY grid),
usual AS (
  SELECT s.grid, c.site_id, count(*) * 1E0 / any_value(g.n) AS share
  FROM sess s JOIN cells c ON c.cell_id = s.cell_id JOIN grid_sessions g ON g.grid = s.grid
  GROUP BY s.grid, c.site_id)
SELECT DISTINCT u.grid, d.hour FROM down d JOIN usual u ON u.site_id = d.site_id
WHERE u.share >= $min_share
ORDER BY d.hour, u.grid
