-- CEI points per unit of poor-session share, fitted on the subscriber-days of [$start, $end) (least squares).
SELECT regr_slope(c.cei, p.share) AS slope
FROM cei_subscriber_day c JOIN (
  SELECT subscriber_id, CAST(start_time AS DATE) AS day, avg(CASE WHEN {poor_session} THEN 1E0 ELSE 0E0 END) AS share
  FROM xdr WHERE start_time >= CAST($start AS TIMESTAMP) AND start_time < CAST($end AS TIMESTAMP) GROUP BY ALL) p
USING (subscriber_id, day)
