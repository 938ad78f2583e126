-- Per answer: the mean overall CEI over the $window days up to its day, weighted by the day's sessions.
SELECT sum(c.cei * c.sessions_total) / sum(CASE WHEN c.cei IS NOT NULL THEN c.sessions_total END) AS cei
FROM calibration_surveys v
LEFT JOIN calibration_cei_subscriber c ON c.subscriber_id = v.subscriber_id
  AND c.day BETWEEN v.sday - INTERVAL ($window - 1) DAY AND v.sday
GROUP BY v.survey_id ORDER BY v.survey_id
