-- Mean answer and mean CEI (default c0, calibrated c1) of the test answers per segment ({segment}),
-- segments of at least 5 answers.
SELECT avg(e.y), avg(e.c0), avg(e.c1)
FROM calibration_test e JOIN calibration_surveys v USING (survey_id) JOIN subscribers s USING (subscriber_id)
GROUP BY {segment} HAVING count(*) >= 5
