-- Median GPS position (MDT) of each subscriber on each serving cell per hour of the window [$start, $end).
SELECT subscriber_id, cell_id, date_trunc('hour', sample_time) AS hour, median(lat) AS lat, median(lon) AS lon
FROM radio_samples
WHERE lat IS NOT NULL AND lon IS NOT NULL AND sample_time >= CAST($start AS TIMESTAMP) AND sample_time < CAST($end AS TIMESTAMP)
GROUP BY ALL
