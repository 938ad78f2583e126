-- Each subscriber's main cell (most sessions in score's window; the first cell id on a tie) and main place:
-- the position (at 1e-3 degrees) of most of their located measurement reports (the lowest latitude, then
-- longitude, on a tie), else the main cell's site. Read from the window's counts (place_sums.sql), keyed
-- by the pseudonym's digits: every subscriber of the base is found by theirs. The smallest (-count, value)
-- struct is the most frequent value with the tie rule, in one aggregate.
WITH c AS (SELECT sub_hi, sub_lo, min({{'neg': -n, 'cell_id': cell_id}}).cell_id AS main_cell FROM cell_sums GROUP BY ALL),
     g AS (SELECT sub_hi, sub_lo, min({{'neg': -n, 'lat': lat, 'lon': lon}}) AS place FROM position_sums GROUP BY ALL),
     s AS (SELECT subscriber_id, {sub_hi} AS sub_hi, {sub_lo} AS sub_lo FROM subscribers)
SELECT s.subscriber_id, c.main_cell, COALESCE(g.place.lat, cells.lat) AS lat, COALESCE(g.place.lon, cells.lon) AS lon
FROM c JOIN s USING (sub_hi, sub_lo) LEFT JOIN g USING (sub_hi, sub_lo) LEFT JOIN cells ON cells.cell_id = c.main_cell
