-- The representative study's answers given on $min_day or later, each with its as-of day (the answer day).
SELECT response_id, subscriber_id, answer_time, CAST(answer_time AS DATE) AS as_of, score
FROM nps_tracker WHERE CAST(answer_time AS DATE) >= $min_day
ORDER BY answer_time, response_id
