-- Each subscriber's main cell (most sessions in score's window; the first cell id on a tie) and main place:
-- the position (at 1e-3 degrees) of most of their located measurement reports (the lowest latitude, then
-- longitude, on a tie), else the main cell's site. Read from the window's counts (place_sums.sql). The
-- smallest (-count, value) struct is the most frequent value with the tie rule, in one aggregate.
WITH c AS (SELECT subscriber_id, min({'neg': -n, 'cell_id': cell_id}).cell_id AS main_cell FROM cell_sums GROUP BY ALL),
     g AS (SELECT subscriber_id, min({'neg': -n, 'lat': lat, 'lon': lon}) AS place FROM position_sums GROUP BY ALL)
SELECT c.subscriber_id, c.main_cell, COALESCE(g.place.lat, cells.lat) AS lat, COALESCE(g.place.lon, cells.lon) AS lon
FROM c LEFT JOIN g USING (subscriber_id) LEFT JOIN cells ON cells.cell_id = c.main_cell
