-- Per device episode (device_sessions): its subscribers, those with a poor session, the grids of their poor
-- sessions and the monthly revenue of those with one.
SELECT a.episode_id, a.subscribers, a.affected_subscribers, a.poor_grids, coalesce(b.affected_arpu, 0) AS affected_arpu FROM
  (SELECT episode_id, count(DISTINCT subscriber_id) AS subscribers,
          count(DISTINCT CASE WHEN poor THEN subscriber_id END) AS affected_subscribers,
          list(DISTINCT grid ORDER BY grid) FILTER (WHERE poor) AS poor_grids
   FROM device_sessions GROUP BY episode_id) a
LEFT JOIN
  (SELECT episode_id, round(sum(arpu_monthly), 2) AS affected_arpu
   FROM (SELECT DISTINCT episode_id, subscriber_id, arpu_monthly FROM device_sessions WHERE poor) GROUP BY episode_id) b
  USING (episode_id)
