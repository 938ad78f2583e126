-- Per subscriber-day, the CEI change: $slope x the change of the poor-session share over all their
-- sessions of that day in [$start, $end) (delta_in: the changed sessions' d_poor).
SELECT d.subscriber_id, d.day, $slope * sum(d.d_poor) / n.n AS d_cei
FROM delta_in d JOIN (SELECT subscriber_id, CAST(start_time AS DATE) AS day, count(*) AS n FROM xdr
                      WHERE start_time >= CAST($start AS TIMESTAMP) AND start_time < CAST($end AS TIMESTAMP) GROUP BY ALL) n
  USING (subscriber_id, day)
GROUP BY d.subscriber_id, d.day, n.n
