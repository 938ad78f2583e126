-- Every session in an area episode's grid-hours (ep_units): read once by area_episodes.sql and
-- episode_sessions.sql, so the week's sessions are joined with the episodes once.
SELECT u.episode_id, x.subscriber_id, x.arpu_monthly, x.poor, x.grid
FROM ep_units u JOIN sess x ON x.grid = u.grid AND x.hour = u.hour
