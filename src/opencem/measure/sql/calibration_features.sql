-- Per answer, over the $window days up to its day: the usage-weighted mean score of every service x KQI
-- ({sums}) and each service's share of the sessions ({shares}).
SELECT {sums}, {shares}
FROM calibration_surveys v
LEFT JOIN calibration_kqi_scores c ON c.subscriber_id = v.subscriber_id
  AND c.day BETWEEN v.sday - INTERVAL ($window - 1) DAY AND v.sday
GROUP BY v.survey_id ORDER BY v.survey_id
