-- Device model x day whose poor sessions exceed what other devices had in the same grid-hours (e) by
-- more than z = $threshold, against the model's own quiet days (its $quantile quantile of observed / e).
WITH gh AS (SELECT grid, hour, avg(CASE WHEN poor THEN 1E0 ELSE 0E0 END) AS p FROM sess GROUP BY grid, hour),
md AS (
  SELECT s.device_model, s.day, count(*) AS n, CAST(sum(CASE WHEN s.poor THEN 1 ELSE 0 END) AS BIGINT) AS o, sum(gh.p) AS e
  FROM sess s JOIN gh USING (grid, hour) WHERE s.device_model IS NOT NULL GROUP BY ALL),
b AS (SELECT device_model, quantile_cont(o / e, $quantile) AS ratio0 FROM md WHERE e > 0 GROUP BY ALL)
SELECT md.*, b.ratio0, (md.o - md.e * b.ratio0) / sqrt(md.e * b.ratio0) AS z
FROM md JOIN b USING (device_model)
WHERE (md.o - md.e * b.ratio0) / sqrt(md.e * b.ratio0) > $threshold
ORDER BY device_model, day
