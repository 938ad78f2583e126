-- The survey answers given on $min_day or later, each with its as-of day (the answer day).
SELECT survey_id, subscriber_id, survey_time, CAST(survey_time AS DATE) AS as_of, score
FROM surveys WHERE CAST(survey_time AS DATE) >= $min_day
