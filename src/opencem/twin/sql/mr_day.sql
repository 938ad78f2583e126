-- Median GPS position (MDT) of each subscriber on each serving cell per day of the window [$start, $end).
SELECT subscriber_id, cell_id, CAST(sample_time AS DATE) AS day, median(lat) AS lat, median(lon) AS lon
FROM radio_samples
WHERE lat IS NOT NULL AND lon IS NOT NULL AND sample_time >= CAST($start AS TIMESTAMP) AND sample_time < CAST($end AS TIMESTAMP)
GROUP BY ALL
