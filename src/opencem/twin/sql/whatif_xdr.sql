-- The sessions of the subscribers in whatif_days over [$start, $end), with the sessions the scenario
-- replays (whatif_replay) in place of the observed ones: the input of measure's KQI step.
SELECT * FROM xdr
WHERE start_time >= CAST($start AS TIMESTAMP) AND start_time < CAST($end AS TIMESTAMP)
  AND subscriber_id IN (SELECT DISTINCT subscriber_id FROM whatif_days)
  AND session_id NOT IN (SELECT session_id FROM whatif_replay)
UNION ALL BY NAME
SELECT * FROM whatif_replay
