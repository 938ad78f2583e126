-- The base the lifts are counted on: subscribers with sessions in [$start, $end), and their mean ARPU.
SELECT count(*) AS subscribers, avg(arpu_monthly) AS arpu FROM subscribers WHERE subscriber_id IN
  (SELECT DISTINCT subscriber_id FROM xdr WHERE start_time >= CAST($start AS TIMESTAMP) AND start_time < CAST($end AS TIMESTAMP))
