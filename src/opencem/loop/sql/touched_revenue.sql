-- The monthly revenue of the subscribers a fix touches: those with sessions in its scope in [$start, $end).
SELECT coalesce(sum(arpu_monthly), 0) AS revenue FROM subscribers
WHERE subscriber_id IN (SELECT DISTINCT subscriber_id FROM xdr
                        WHERE start_time >= CAST($start AS TIMESTAMP) AND start_time < CAST($end AS TIMESTAMP) AND {scope})
