-- Where each subscriber's located measurement reports were each day, at 1e-3 degrees (about 100 m), with
-- their count: the main place of a subscriber over any window is the position with most reports.
SELECT subscriber_id, CAST(sample_time AS DATE) AS day, round(lat, 3) AS lat, round(lon, 3) AS lon, count(*) AS reports
FROM radio_samples WHERE lat IS NOT NULL
GROUP BY subscriber_id, CAST(sample_time AS DATE), round(lat, 3), round(lon, 3)
