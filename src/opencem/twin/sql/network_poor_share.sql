-- For each session of cf_days, the network's poor-session share on its day (a fixed device's context).
SELECT d.session_id, n.share
FROM cf_days d LEFT JOIN (
  SELECT CAST(start_time AS DATE) AS day, avg(CASE WHEN {poor_session} THEN 1E0 ELSE 0E0 END) AS share FROM xdr GROUP BY 1) n
USING (day) ORDER BY d.session_id
