-- Each poor session (the condition comes from the indicator tree) with the subscriber's own radio on that
-- cell in that hour, as exact sums and counts (repeated on every poor session of the hour). A potential
-- detractor's network evidence (nps/sql/potential_detractor_evidence.sql) reads these few rows over any
-- window of days instead of every session and report of the window. Only one subscriber-day's sessions
-- and reports go into a row, so a stream can recompute the subscriber-days it touches.
WITH ps AS (
  SELECT subscriber_id, CAST(start_time AS DATE) AS day, cell_id, start_time, service, success, rtt_ms
  FROM xdr WHERE ({poor_session})),
radio AS (
  SELECT h.subscriber_id, h.cell_id, h.hour,
         sum(CAST(r.rsrp_dbm AS DECIMAL(38, 12))) AS rsrp_sum, count(r.rsrp_dbm) AS rsrp_reports,
         sum(CAST(r.sinr_db AS DECIMAL(38, 12))) AS sinr_sum, count(r.sinr_db) AS sinr_reports
  FROM (SELECT DISTINCT subscriber_id, cell_id, date_trunc('hour', start_time) AS hour FROM ps) h
  JOIN radio_samples r ON r.subscriber_id = h.subscriber_id AND r.cell_id = h.cell_id
    AND date_trunc('hour', r.sample_time) = h.hour
  GROUP BY h.subscriber_id, h.cell_id, h.hour)
SELECT ps.subscriber_id, ps.day, ps.cell_id, ps.start_time, ps.service, ps.success, ps.rtt_ms,
       radio.rsrp_sum, radio.rsrp_reports, radio.sinr_sum, radio.sinr_reports
FROM ps LEFT JOIN radio ON radio.subscriber_id = ps.subscriber_id AND radio.cell_id = ps.cell_id
  AND radio.hour = date_trunc('hour', ps.start_time)
