-- The last observation of each subscriber in the recent MR and xDR files, and its last GPS fix.
-- Tables: recent_mr (radio_samples), recent_xdr (xdr), cells.
WITH obs AS (
    SELECT subscriber_id, sample_time AS t, lat, lon, cell_id FROM recent_mr
    UNION ALL
    SELECT subscriber_id, start_time AS t, CAST(NULL AS DOUBLE) AS lat, CAST(NULL AS DOUBLE) AS lon, cell_id FROM recent_xdr
), last_any AS (
    SELECT subscriber_id, max(t) AS last_time, arg_max(cell_id, t) AS last_cell
    FROM obs GROUP BY subscriber_id
), last_fix AS (
    SELECT subscriber_id, max(t) AS fix_time, arg_max({'lat': lat, 'lon': lon}, t) AS fix
    FROM obs WHERE lat IS NOT NULL AND lon IS NOT NULL GROUP BY subscriber_id
)
SELECT a.subscriber_id, a.last_time, c.lat AS cell_lat, c.lon AS cell_lon, c.area_type,
       f.fix_time, f.fix.lat AS fix_lat, f.fix.lon AS fix_lon
FROM last_any a
LEFT JOIN last_fix f ON f.subscriber_id = a.subscriber_id
LEFT JOIN cells c ON c.cell_id = a.last_cell
