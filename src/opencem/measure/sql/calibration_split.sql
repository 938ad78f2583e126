-- Each answer's part of the split in time: 0 = the earliest half (fit), 1 = the next quarter (choose the
-- blend), 2 = the last quarter (test).
WITH q AS (SELECT quantile_disc(survey_time, 0.5) AS q50, quantile_disc(survey_time, 0.75) AS q75
           FROM calibration_surveys)
SELECT survey_id, score,
       CASE WHEN survey_time <= q.q50 THEN 0 WHEN survey_time <= q.q75 THEN 1 ELSE 2 END AS part
FROM calibration_surveys, q ORDER BY survey_id
