-- Each subscriber's main cell (most sessions in the 28 days before $as_of) and main place: the position
-- (at 1e-3 degrees) of most of their located measurement reports, else the main cell's site. Both are read
-- from measure's per-subscriber daily summaries.
WITH c AS (SELECT subscriber_id, first(cell_id ORDER BY n DESC, cell_id) AS main_cell FROM (
             SELECT subscriber_id, cell_id, sum(sessions) AS n FROM subscriber_cell_day
             WHERE day < $as_of AND day >= $as_of - INTERVAL 28 DAY GROUP BY ALL) GROUP BY ALL),
     g AS (SELECT subscriber_id, first(lat ORDER BY n DESC, lat, lon) AS lat, first(lon ORDER BY n DESC, lat, lon) AS lon FROM (
             SELECT subscriber_id, lat, lon, sum(reports) AS n FROM subscriber_position_day
             WHERE day < $as_of AND day >= $as_of - INTERVAL 28 DAY GROUP BY ALL) GROUP BY ALL)
SELECT c.subscriber_id, c.main_cell, COALESCE(g.lat, cells.lat) AS lat, COALESCE(g.lon, cells.lon) AS lon
FROM c LEFT JOIN g USING (subscriber_id) LEFT JOIN cells ON cells.cell_id = c.main_cell
