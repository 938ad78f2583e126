-- Each subscriber's main cell (most sessions in the 28 days before $as_of) and main place: the most
-- frequent GPS position of their measurement reports (rounded to 1e-3 degrees), else the main cell's site.
WITH c AS (SELECT subscriber_id, first(cell_id ORDER BY n DESC, cell_id) AS main_cell FROM (
             SELECT subscriber_id, cell_id, count(*) AS n FROM xdr
             WHERE day < $as_of AND day >= $as_of - INTERVAL 28 DAY GROUP BY ALL) GROUP BY ALL),
     g AS (SELECT subscriber_id, first(lat ORDER BY n DESC, lat, lon) AS lat, first(lon ORDER BY n DESC, lat, lon) AS lon FROM (
             SELECT subscriber_id, round(lat, 3) AS lat, round(lon, 3) AS lon, count(*) AS n
             FROM radio_samples WHERE lat IS NOT NULL AND CAST(sample_time AS DATE) < $as_of
               AND CAST(sample_time AS DATE) >= $as_of - INTERVAL 28 DAY GROUP BY ALL) GROUP BY ALL)
SELECT c.subscriber_id, c.main_cell, COALESCE(g.lat, cells.lat) AS lat, COALESCE(g.lon, cells.lon) AS lon
FROM c LEFT JOIN g USING (subscriber_id) LEFT JOIN cells ON cells.cell_id = c.main_cell
