-- Every subscriber in an episode (episode_sessions), with their sessions and poor sessions.
SELECT episode_id, subscriber_id, any_value(arpu_monthly) AS arpu_monthly, count(*) AS sessions,
       sum(CASE WHEN poor THEN 1 ELSE 0 END) AS poor_sessions
FROM episode_sessions GROUP BY ALL
ORDER BY 1, 2
