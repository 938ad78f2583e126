-- Each subscriber's main cell (most sessions in the 28 days before $as_of; the first cell id on a tie) and
-- main place: the position (at 1e-3 degrees) of most of their located measurement reports (the lowest
-- latitude, then longitude, on a tie), else the main cell's site. Both are read from measure's
-- per-subscriber daily summaries. The smallest (-count, value) struct is the most frequent value with
-- the tie rule, in one aggregate.
WITH c AS (SELECT subscriber_id, min({'neg': -n, 'cell_id': cell_id}).cell_id AS main_cell
           FROM (SELECT subscriber_id, cell_id, sum(sessions) AS n FROM subscriber_cell_day
                 WHERE day < $as_of AND day >= $as_of - INTERVAL 28 DAY GROUP BY ALL) GROUP BY ALL),
     g AS (SELECT subscriber_id, min({'neg': -n, 'lat': lat, 'lon': lon}) AS place
           FROM (SELECT subscriber_id, lat, lon, sum(reports) AS n FROM subscriber_position_day
                 WHERE day < $as_of AND day >= $as_of - INTERVAL 28 DAY GROUP BY ALL) GROUP BY ALL)
SELECT c.subscriber_id, c.main_cell, COALESCE(g.place.lat, cells.lat) AS lat, COALESCE(g.place.lon, cells.lon) AS lon
FROM c LEFT JOIN g USING (subscriber_id) LEFT JOIN cells ON cells.cell_id = c.main_cell
