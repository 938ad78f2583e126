-- The network evidence of each candidate (`cand`: likely detractors) over the 7 days before $as_of: the
-- cell with most of their poor sessions, when those happened, that cell's load and interference then,
-- the candidate's radio then, round trips against the cell's median, failed web sessions, and the
-- device model's poor-session rate against the rest. All but the cell's median round trip come from
-- measure's daily summaries: the poor sessions, each with the subscriber's radio in its hour, from
-- poor_session_day, and every session of a subscriber-day from cei_subscriber_day.
-- Real-valued means are summed in fixed point (exact, so the same in any order): a float sum's last bit
-- depends on the order the threads add in, and must not move a cause across its threshold between runs.
WITH top AS (  -- ranked with a window, not first(... ORDER BY), so that Spark runs the same SQL
  SELECT subscriber_id, cell_id, n_poor AS poor_sessions FROM (
    SELECT subscriber_id, cell_id, n_poor, row_number() OVER (PARTITION BY subscriber_id ORDER BY n_poor DESC, cell_id) AS k
    FROM (SELECT subscriber_id, cell_id, count(*) AS n_poor FROM poor_session_day JOIN cand USING (subscriber_id)
          WHERE day < $as_of AND day >= $as_of - INTERVAL 7 DAY GROUP BY ALL))
  WHERE k = 1),
ps AS (
  SELECT p.* FROM poor_session_day p JOIN top USING (subscriber_id, cell_id)
  WHERE p.day < $as_of AND p.day >= $as_of - INTERVAL 7 DAY),
kpi AS (
  SELECT ps.subscriber_id, CAST(sum(CAST(k.prb_util_dl AS DECIMAL(38, 12))) AS DOUBLE) / count(k.prb_util_dl) AS prb_util,
         CAST(sum(CAST(k.ul_interference_dbm AS DECIMAL(38, 12))) AS DOUBLE) / count(k.ul_interference_dbm) AS ul_interf
  FROM ps JOIN kpi_cell_15min k ON k.cell_id = ps.cell_id
    AND ps.start_time >= k.period_start AND ps.start_time < k.period_start + INTERVAL 15 MINUTE
  WHERE k.day < $as_of AND k.day >= $as_of - INTERVAL 8 DAY GROUP BY ALL),  -- a period may start the day before
radio AS (  -- each hour's sums once, however many poor sessions it had
  SELECT subscriber_id, CAST(sum(CAST(rsrp_sum AS DECIMAL(38, 12))) AS DOUBLE) / NULLIF(sum(rsrp_reports), 0) AS rsrp,
         CAST(sum(CAST(sinr_sum AS DECIMAL(38, 12))) AS DOUBLE) / NULLIF(sum(sinr_reports), 0) AS sinr
  FROM (SELECT DISTINCT subscriber_id, cell_id, date_trunc('hour', start_time) AS h, rsrp_sum, rsrp_reports,
                        sinr_sum, sinr_reports FROM ps) GROUP BY ALL),
rtt AS (
  SELECT ps.subscriber_id,
         CAST(sum(CAST(ps.rtt_ms AS DECIMAL(38, 12))) AS DOUBLE) / count(ps.rtt_ms) / NULLIF(any_value(b.rtt_p50), 0) AS rtt_ratio,
         avg(CASE WHEN ps.service IN ('web', 'social') AND NOT ps.success THEN 1E0 ELSE 0E0 END) AS web_fail_share,
         avg(CASE WHEN ps.service = 'voice' THEN 1E0 ELSE 0E0 END) AS voice_share,
         min(ps.day) AS first_day, max(ps.day) AS last_day
  FROM ps LEFT JOIN (SELECT cell_id, median(rtt_ms) AS rtt_p50 FROM xdr x
                     WHERE x.day < $as_of AND x.day >= $as_of - INTERVAL 7 DAY
                       AND cell_id IN (SELECT cell_id FROM top) GROUP BY ALL) b
    ON b.cell_id = ps.cell_id GROUP BY ALL),
hours AS (
  SELECT subscriber_id, band AS when_ FROM (
    SELECT subscriber_id, band, row_number() OVER (PARTITION BY subscriber_id ORDER BY n DESC, band) AS k FROM (
      SELECT subscriber_id, CASE WHEN hour(start_time) < 6 THEN 'night' WHEN hour(start_time) < 12 THEN 'mornings'
             WHEN hour(start_time) < 17 THEN 'afternoons' ELSE 'evenings' END AS band, count(*) AS n
      FROM ps GROUP BY ALL))
  WHERE k = 1),
dev AS (  -- poor-session rate of each device model against the rest over the same week: the poor sessions
          -- from poor_session_day, all sessions from cei_subscriber_day (one row a subscriber-day)
  SELECT b.device_model, sum(w.poor) * 1E0 / sum(w.sessions) AS poor_rate
  FROM (SELECT subscriber_id, 1 AS poor, 0 AS sessions FROM poor_session_day
        WHERE day < $as_of AND day >= $as_of - INTERVAL 7 DAY
        UNION ALL
        SELECT subscriber_id, 0 AS poor, sessions_total AS sessions FROM cei_subscriber_day
        WHERE day < $as_of AND day >= $as_of - INTERVAL 7 DAY) w
  JOIN subscribers b USING (subscriber_id) GROUP BY ALL)
SELECT top.subscriber_id, top.cell_id AS evidence_cell, top.poor_sessions, rtt.first_day, rtt.last_day,
       hours.when_ AS hours, kpi.prb_util, kpi.ul_interf, radio.rsrp, radio.sinr, rtt.rtt_ratio,
       rtt.web_fail_share, rtt.voice_share,
       dev.poor_rate / (SELECT CAST(sum(CAST(poor_rate AS DECIMAL(38, 12))) AS DOUBLE) / count(poor_rate) FROM dev) AS device_ratio
FROM top LEFT JOIN kpi USING (subscriber_id) LEFT JOIN radio USING (subscriber_id)
LEFT JOIN rtt USING (subscriber_id) LEFT JOIN hours USING (subscriber_id) JOIN subscribers b USING (subscriber_id)
LEFT JOIN dev ON dev.device_model = b.device_model
