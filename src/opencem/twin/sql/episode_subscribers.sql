-- Every subscriber in an episode: sessions in its grid-hours (area) or of its device model in its span
-- (device, episodes_out), with their poor sessions.
SELECT u.episode_id, x.subscriber_id, any_value(x.arpu_monthly) AS arpu_monthly, count(*) AS sessions,
       sum(CASE WHEN x.poor THEN 1 ELSE 0 END) AS poor_sessions
FROM ep_units u JOIN sess x ON x.grid = u.grid AND x.hour = u.hour GROUP BY ALL
UNION ALL
SELECT e.episode_id, x.subscriber_id, any_value(x.arpu_monthly), count(*), sum(CASE WHEN x.poor THEN 1 ELSE 0 END)
FROM episodes_out e JOIN sess x ON e.kind = 'device' AND x.device_model = e.device_model
  AND x.start_time >= e.start_time AND x.start_time < e.end_time GROUP BY ALL
ORDER BY 1, 2
