-- Rows of the source relation in [$start, $end) with pos_lat / pos_lon and position_source: the UE's
-- own GPS on the same cell in the same hour, else that day, else the serving cell's centroid.
SELECT s.*,
  COALESCE(h.lat, d.lat, c.lat) AS pos_lat, COALESCE(h.lon, d.lon, c.lon) AS pos_lon,
  CASE WHEN h.lat IS NOT NULL THEN 'gps_hour' WHEN d.lat IS NOT NULL THEN 'gps_day' ELSE 'cell' END AS position_source
FROM {source} s
LEFT JOIN mr_hour h ON h.subscriber_id = s.subscriber_id AND h.cell_id = s.cell_id
                    AND h.hour = date_trunc('hour', s.{time_col})
LEFT JOIN mr_day d ON d.subscriber_id = s.subscriber_id AND d.cell_id = s.cell_id
                   AND d.day = CAST(s.{time_col} AS DATE)
LEFT JOIN cell_centroid c ON c.cell_id = s.cell_id
WHERE s.{time_col} >= CAST($start AS TIMESTAMP) AND s.{time_col} < CAST($end AS TIMESTAMP)
