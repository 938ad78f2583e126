-- Each cell's coverage centre: the median GPS position of the reports it served in [$start, $end), else its site.
SELECT c.cell_id, COALESCE(g.lat, c.lat) AS lat, COALESCE(g.lon, c.lon) AS lon
FROM cells c
LEFT JOIN (SELECT cell_id, median(lat) AS lat, median(lon) AS lon FROM radio_samples
           WHERE lat IS NOT NULL AND lon IS NOT NULL AND sample_time >= CAST($start AS TIMESTAMP) AND sample_time < CAST($end AS TIMESTAMP)
           GROUP BY ALL) g
  USING (cell_id)
