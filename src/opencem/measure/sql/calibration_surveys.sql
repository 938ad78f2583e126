-- The survey answers, with the day each was given.
SELECT survey_id, subscriber_id, CAST(survey_time AS DATE) AS sday, score, survey_time
FROM surveys ORDER BY survey_id
