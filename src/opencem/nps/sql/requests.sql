-- The (subscriber, as-of day) pairs to compute features for, each once.
SELECT DISTINCT subscriber_id, CAST(as_of AS DATE) AS as_of FROM requests_in
