-- Where each subscriber's located measurement reports were each day, at 1e-3 degrees (about 100 m), with
-- their count: the main place of a subscriber over any window is the position with most reports. The
-- snap is floor(x * 1000 + 0.5) / 1000 rather than round(x, 3): Spark rounds the double's exact decimal
-- value and DuckDB the scaled double, which puts a few reports on different sides of a half.
SELECT subscriber_id, CAST(sample_time AS DATE) AS day,
  floor(lat * 1000 + 0.5) / 1000 AS lat, floor(lon * 1000 + 0.5) / 1000 AS lon, count(*) AS reports
FROM radio_samples WHERE lat IS NOT NULL
GROUP BY subscriber_id, CAST(sample_time AS DATE), floor(lat * 1000 + 0.5), floor(lon * 1000 + 0.5)
