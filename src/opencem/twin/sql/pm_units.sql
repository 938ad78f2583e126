-- The grid-hours to cluster: the experience test's (flagged_units) and those of faults seen cell by cell
-- (cell_events). For each site, hour and signal, a fault's grid-hours are the grids that the site's faulty cells
-- usually carry (they hold at least $min_share of the grid's sessions in the window), and always the grid they
-- carry most of. A down cell's users make no session to be poor in, and an interferer may cost little experience
-- where other layers take the users, so these grid-hours join as they are, at z $z.
-- One signal per grid-hour: a cell-specific signal (down, interfered, surge, slow link) takes it, even from the
-- experience test, since it names the cells and the cause; a chronic signal ($chronic prefix) only fills hours
-- nothing else flagged. `placed` marks the grid-hours a cell signal placed, `site_id` the site whose cells did,
-- and `link` their transport link for a link signal.
WITH ev AS (SELECT c.site_id, e.hour, e.signal, e.cell_id,
                   CASE WHEN e.signal IN ('link_rtt', 'link_thp') THEN c.transport_link_id END AS link
            FROM cell_events e JOIN cells c USING (cell_id)),
grid_sessions AS (SELECT grid, count(*) AS n FROM sess GROUP BY grid),
usual AS (SELECT s.grid, s.cell_id, count(*) * 1E0 / any_value(g.n) AS share
          FROM sess s JOIN grid_sessions g USING (grid) GROUP BY s.grid, s.cell_id),
covered AS (SELECT u.grid, ev.site_id, ev.link, ev.hour, ev.signal, sum(u.share) AS share
            FROM ev JOIN usual u USING (cell_id) GROUP BY ALL),
pm AS (SELECT grid, hour, signal, site_id, link, share, starts_with(signal, $chronic) AS chronic FROM covered
       QUALIFY share >= $min_share OR share = max(share) OVER (PARTITION BY site_id, hour, signal)),
one AS (SELECT * FROM pm QUALIFY row_number() OVER (PARTITION BY grid, hour ORDER BY chronic, signal, share DESC, site_id) = 1)
SELECT f.grid, f.hour, f.z, f.signal, false AS placed, CAST(NULL AS VARCHAR) AS site_id, CAST(NULL AS VARCHAR) AS link
FROM flagged_units f
WHERE NOT EXISTS (SELECT 1 FROM one WHERE one.grid = f.grid AND one.hour = f.hour AND NOT one.chronic)
UNION ALL
SELECT one.grid, one.hour, CAST($z AS DOUBLE) AS z, one.signal, true AS placed, one.site_id, one.link FROM one
WHERE NOT one.chronic OR NOT EXISTS (SELECT 1 FROM flagged_units f WHERE f.grid = one.grid AND f.hour = one.hour)
ORDER BY hour, grid
