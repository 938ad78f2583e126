-- Each subscriber's sessions per site in [$start, $as_of) (measure's subscriber_cell_day): the places whose
-- experience a campaign looks at.
SELECT d.subscriber_id, c.site_id, sum(d.sessions) AS sessions
FROM subscriber_cell_day d JOIN cells c USING (cell_id)
WHERE d.day >= $start AND d.day < $as_of
GROUP BY ALL
