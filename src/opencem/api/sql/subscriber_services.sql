-- One subscriber's use of each service over the days [$first, $last].
SELECT service, sum(sessions) AS sessions, sum(volume_mb) AS volume_mb, count(DISTINCT day) AS days, avg(cei) AS cei
FROM cei_service_day
WHERE subscriber_id = $subscriber AND day BETWEEN $first AND $last
GROUP BY service
ORDER BY volume_mb DESC, service
