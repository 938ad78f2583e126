-- Every verification metric of each subscriber of `who_in` over [$start, $end) ($days days): sessions,
-- poor-session share, throughput, round trip, data use per day, CEI, complaints, port-out in the window
-- and the revenue still earned at its end. The poor-session condition comes from the indicator tree.
WITH x AS (SELECT subscriber_id, count(*) AS n, avg(CASE WHEN {poor_session} THEN 1E0 ELSE 0E0 END) AS poor_share,
                  avg(throughput_dl_kbps) AS throughput_kbps, avg(rtt_ms) AS rtt_ms,
                  CAST(sum(volume_dl_bytes + volume_ul_bytes) AS DOUBLE) / 1e6 / $days AS dou_mb
           FROM xdr WHERE start_time >= CAST($start AS TIMESTAMP) AND start_time < CAST($end AS TIMESTAMP) GROUP BY 1),
     c AS (SELECT subscriber_id, avg(cei) AS cei FROM cei_subscriber_day
           WHERE day >= CAST($start AS DATE) AND day < CAST($end AS DATE) GROUP BY 1),
     k AS (SELECT subscriber_id, count(*) AS complaints FROM care_contacts
           WHERE is_complaint AND contact_time >= CAST($start AS TIMESTAMP) AND contact_time < CAST($end AS TIMESTAMP) GROUP BY 1),
     p AS (SELECT subscriber_id, min(portout_date) AS portout_date FROM portouts GROUP BY 1)
SELECT w.subscriber_id, x.n, x.poor_share, x.throughput_kbps, x.rtt_ms, coalesce(x.dou_mb, 0) AS dou_mb, c.cei,
       CAST(coalesce(k.complaints, 0) AS DOUBLE) AS complaints,
       CASE WHEN p.portout_date >= CAST($start AS DATE) AND p.portout_date < CAST($end AS DATE) THEN 1E0 ELSE 0E0 END AS churned,
       CASE WHEN p.portout_date < CAST($end AS DATE) THEN 0E0 ELSE s.arpu_monthly END AS revenue_eur, s.arpu_monthly
FROM who_in w JOIN subscribers s USING (subscriber_id) LEFT JOIN x USING (subscriber_id) LEFT JOIN c USING (subscriber_id)
  LEFT JOIN k USING (subscriber_id) LEFT JOIN p USING (subscriber_id)
ORDER BY w.subscriber_id
