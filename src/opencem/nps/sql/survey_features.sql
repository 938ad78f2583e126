-- Each answer with the features of its subscriber as of the answer day, in answer order.
SELECT a.survey_id, a.survey_time, a.score, f.* FROM answers a
JOIN answer_features f ON f.subscriber_id = a.subscriber_id AND f.as_of = a.as_of
ORDER BY a.survey_time, a.survey_id
