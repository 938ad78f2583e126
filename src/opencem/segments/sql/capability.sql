-- Each device capability label (the operator's own words) with its subscribers and the share of their
-- sessions in [$start, $as_of) that ran on the RAT $nr_rat: the labels' order of capability is read from it.
SELECT s.device_capability, count(DISTINCT s.subscriber_id) AS subscribers, count(x.subscriber_id) AS sessions,
       sum(CASE WHEN x.rat = $nr_rat THEN 1 ELSE 0 END) AS nr_sessions
FROM subscribers s LEFT JOIN xdr x ON x.subscriber_id = s.subscriber_id AND x.start_time >= $start AND x.start_time < $as_of
WHERE s.device_capability IS NOT NULL
GROUP BY ALL ORDER BY s.device_capability
