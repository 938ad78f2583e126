-- Potential detractors (`det`) with a network cause who fell to detractor since the previous scoring
-- (`sc`: risk_flag), most valuable first. The last network episode of the twin (`episodes`,
-- `episode_subscribers`) a subscriber had poor sessions in names the cause where their own evidence
-- could not, and is added to the reason.
WITH caught AS (SELECT es.subscriber_id, e.episode_id, e.cause AS episode_cause, e.start_time, e.evidence
                FROM episode_subscribers es JOIN episodes e USING (episode_id)
                WHERE e.cause <> $non_network AND es.poor_sessions > 0),
     last_ep AS (SELECT subscriber_id, arg_max(episode_id, start_time) AS episode_id, arg_max(episode_cause, start_time) AS episode_cause,
                        arg_max(start_time, start_time) AS episode_start, arg_max(evidence, start_time) AS evidence
                 FROM caught GROUP BY subscriber_id)
SELECT d.subscriber_id, sc.plan, sc.value_tier, round(d.arpu_monthly, 2) AS arpu_monthly, round(d.p_detractor, 3) AS p_detractor,
       CASE WHEN d.cause = 'network (unclear)' AND e.episode_cause IS NOT NULL THEN e.episode_cause ELSE d.cause END AS cause,
       e.episode_id,
       d.reason || CASE WHEN e.episode_id IS NULL THEN ''
                        ELSE '; caught in ' || replace(e.episode_cause, '_', ' ') || ' episode ' || e.episode_id || ' from '
                             || strftime(e.episode_start, '%d %b %H:%M') END AS reason
FROM det d JOIN sc USING (subscriber_id) LEFT JOIN last_ep e USING (subscriber_id)
WHERE d.network_cause AND sc.risk_flag
ORDER BY d.arpu_monthly DESC, d.p_detractor DESC, d.subscriber_id
