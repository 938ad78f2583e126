-- The subscribers with $device_model in [$start, $end): all, those with a poor session, the grids of their
-- poor sessions and the monthly revenue of those with one.
SELECT a.*, b.affected_arpu FROM
  (SELECT count(DISTINCT subscriber_id) AS subscribers, count(DISTINCT CASE WHEN poor THEN subscriber_id END) AS affected_subscribers,
          list(DISTINCT grid ORDER BY grid) FILTER (WHERE poor) AS poor_grids
   FROM sess WHERE device_model = $device_model AND day >= $start AND day < $end) a,
  (SELECT round(coalesce(sum(arpu_monthly), 0), 2) AS affected_arpu
   FROM (SELECT DISTINCT subscriber_id, arpu_monthly FROM sess
         WHERE device_model = $device_model AND day >= $start AND day < $end AND poor)) b
