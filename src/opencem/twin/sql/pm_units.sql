-- Grid-hours of a fault seen in PM (cell_events): for each site, hour and signal, the grids that the site's
-- faulty cells usually carry (they hold at least $min_share of the grid's sessions in the window), and always
-- the grid they carry most of. A down cell's users make no session to be poor in, and an interferer may cost
-- little experience where other layers take the users, so these grid-hours join the anomalous ones as they are.
WITH ev AS (SELECT c.site_id, e.hour, e.signal, e.cell_id FROM cell_events e JOIN cells c USING (cell_id)),
grid_sessions AS (SELECT grid, count(*) AS n FROM sess GROUP BY grid),
usual AS (SELECT s.grid, s.cell_id, count(*) * 1E0 / any_value(g.n) AS share
          FROM sess s JOIN grid_sessions g USING (grid) GROUP BY s.grid, s.cell_id),
covered AS (SELECT u.grid, ev.site_id, ev.hour, ev.signal, sum(u.share) AS share
            FROM ev JOIN usual u USING (cell_id) GROUP BY ALL)
SELECT grid, hour, signal FROM covered
QUALIFY share >= $min_share OR share = max(share) OVER (PARTITION BY site_id, hour, signal)
ORDER BY hour, grid, signal
