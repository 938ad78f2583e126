-- The anomalous grid-hours (units_in) with their episode: clusters numbered by first hour, then first
-- grid, so a re-run names them the same.
SELECT 'E' || lpad(CAST(dense_rank() OVER (ORDER BY first_hour, first_grid, label) AS VARCHAR), 4, '0') AS episode_id,
       grid, hour, z, signal, site_id
FROM (SELECT *, min(hour) OVER (PARTITION BY label) AS first_hour, min(grid) OVER (PARTITION BY label) AS first_grid
      FROM units_in)
