-- Every session in an episode: those in its grid-hours (area) or of its device model in its span (device,
-- episodes_out). A table of its own, grouped by episode_subscribers.sql: joined and grouped in one query,
-- DuckDB pushes the grouping below the join, over every session of the window (100k x 7: 5x slower, and
-- out of memory at 1M).
SELECT u.episode_id, x.subscriber_id, x.arpu_monthly, x.poor
FROM ep_units u JOIN sess x ON x.grid = u.grid AND x.hour = u.hour
UNION ALL
SELECT e.episode_id, x.subscriber_id, x.arpu_monthly, x.poor
FROM episodes_out e JOIN sess x ON e.kind = 'device' AND x.device_model = e.device_model
  AND x.start_time >= e.start_time AND x.start_time < e.end_time
