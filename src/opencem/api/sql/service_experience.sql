-- Per main grid and service: each subscriber's mean CEI of the service over the days [$first, $last].
SELECT s.grid, c.service, c.subscriber_id, avg(c.cei) AS cei, sum(c.sessions) AS sessions
FROM cei_service_day c
JOIN scores s ON s.subscriber_id = c.subscriber_id
WHERE c.day BETWEEN $first AND $last AND c.cei IS NOT NULL AND s.grid IS NOT NULL
GROUP BY s.grid, c.service, c.subscriber_id
