-- Radio samples of [$start, $end) with a position: their own GPS, else the placement's (place.sql).
SELECT r.* EXCLUDE (lat, lon), COALESCE(r.lat, p.pos_lat) AS lat, COALESCE(r.lon, p.pos_lon) AS lon,
       CASE WHEN r.lat IS NOT NULL THEN 'gps' ELSE p.position_source END AS position_source
FROM radio_samples r
JOIN ({placed}) p USING (subscriber_id, cell_id, sample_time)
WHERE r.sample_time >= CAST($start AS TIMESTAMP) AND r.sample_time < CAST($end AS TIMESTAMP)
