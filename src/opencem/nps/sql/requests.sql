-- The (subscriber, as-of day) pairs to compute features for, each once, with the days of history the
-- window holds (the measured days start on $first_day).
SELECT DISTINCT subscriber_id, CAST(as_of AS DATE) AS as_of,
       greatest(1, least($window_days, date_diff('day', CAST($first_day AS DATE), CAST(as_of AS DATE)))) AS history_days
FROM requests_in
