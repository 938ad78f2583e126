-- The measurement reports of the subscribers in whatif_days over [$start, $end) as a radio fix changes
-- them: on the changed cells ($scope_cells), RSRP and SINR raised to at least $rsrp_floor / $sinr_floor
-- (NULL: unchanged). The input of measure's radio_subscriber_day step.
SELECT subscriber_id, sample_time,
  CASE WHEN cell_id IN (SELECT unnest($scope_cells)) THEN greatest(rsrp_dbm, COALESCE(CAST($rsrp_floor AS DOUBLE), rsrp_dbm)) ELSE rsrp_dbm END AS rsrp_dbm,
  CASE WHEN cell_id IN (SELECT unnest($scope_cells)) THEN greatest(sinr_db, COALESCE(CAST($sinr_floor AS DOUBLE), sinr_db)) ELSE sinr_db END AS sinr_db
FROM radio_samples
WHERE sample_time >= CAST($start AS TIMESTAMP) AND sample_time < CAST($end AS TIMESTAMP)
  AND subscriber_id IN (SELECT DISTINCT subscriber_id FROM whatif_days)
