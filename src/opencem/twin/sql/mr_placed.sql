-- Radio samples of [$start, $end) with a position: their own GPS (both coordinates), else the placement's
-- (place.sql).
SELECT r.* EXCLUDE (lat, lon), CASE WHEN r.lat IS NOT NULL AND r.lon IS NOT NULL THEN r.lat ELSE p.pos_lat END AS lat,
       CASE WHEN r.lat IS NOT NULL AND r.lon IS NOT NULL THEN r.lon ELSE p.pos_lon END AS lon,
       CASE WHEN r.lat IS NOT NULL AND r.lon IS NOT NULL THEN 'gps' ELSE p.position_source END AS position_source
FROM radio_samples r
JOIN ({placed}) p USING (subscriber_id, cell_id, sample_time)
WHERE r.sample_time >= CAST($start AS TIMESTAMP) AND r.sample_time < CAST($end AS TIMESTAMP)
