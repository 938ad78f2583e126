-- Every session in an episode: those in its grid-hours (area) or of its device model in its run (device),
-- grouped by episode_subscribers.sql. A table of its own: joined and grouped in one query, DuckDB pushes
-- the grouping below the join, over every session of the window (100k x 7: 5x slower, and out of memory
-- at 1M).
SELECT episode_id, subscriber_id, arpu_monthly, poor FROM area_sessions
UNION ALL
SELECT episode_id, subscriber_id, arpu_monthly, poor FROM device_sessions
