-- Every session in an episode: those in its grid-hours (area_sessions) or of its device model in its run
-- (device_sessions), grouped by episode_subscribers.sql.
SELECT episode_id, subscriber_id, arpu_monthly, poor FROM area_sessions
UNION ALL
SELECT episode_id, subscriber_id, arpu_monthly, poor FROM device_sessions
