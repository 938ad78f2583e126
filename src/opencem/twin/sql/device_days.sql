-- Device model x day whose poor sessions exceed what other devices had in the same grid-hours (e) by
-- more than z = $threshold (read from each day's sums per grid x hour x device, sess_device_hour.sql), against the model's own quiet days (its $quantile quantile of observed / e).
WITH gh AS (SELECT grid, hour, sum(poor) * 1E0 / sum(n) AS p FROM sess_device_hour GROUP BY grid, hour),
md AS (
  SELECT s.device_model, s.day, sum(s.n) AS n, CAST(sum(s.poor) AS BIGINT) AS o, sum(s.n * gh.p) AS e
  FROM sess_device_hour s JOIN gh USING (grid, hour) WHERE s.device_model IS NOT NULL GROUP BY ALL),
b AS (SELECT device_model, quantile_cont(o / e, $quantile) AS ratio0 FROM md WHERE e > 0 GROUP BY ALL)
SELECT md.*, b.ratio0, (md.o - md.e * b.ratio0) / sqrt(md.e * b.ratio0) AS z
FROM md JOIN b USING (device_model)
WHERE (md.o - md.e * b.ratio0) / sqrt(md.e * b.ratio0) > $threshold
ORDER BY device_model, day
