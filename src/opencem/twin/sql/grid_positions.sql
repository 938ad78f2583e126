-- Every position a session or radio sample of [$start, $end) can be placed at (place.sql, mr_placed.sql): the
-- GPS medians per hour and day, the cells' coverage centres and the samples' own GPS, snapped to 1 / $scale
-- degrees as integer keys, round(x * $scale), which both engines compute alike (ROUND(x, n) may differ
-- between them near a tie). Known before placing, so the placement and the grid join are one step.
SELECT DISTINCT CAST(round(lat * $scale) AS BIGINT) AS lat_key, CAST(round(lon * $scale) AS BIGINT) AS lon_key
FROM (SELECT lat, lon FROM mr_hour UNION ALL SELECT lat, lon FROM mr_day UNION ALL SELECT lat, lon FROM cell_centroid
      UNION ALL SELECT lat, lon FROM radio_samples
      WHERE sample_time >= CAST($start AS TIMESTAMP) AND sample_time < CAST($end AS TIMESTAMP))
WHERE lat IS NOT NULL AND lon IS NOT NULL
