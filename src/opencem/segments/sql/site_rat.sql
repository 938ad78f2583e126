-- The experience per site and RAT in [$start, $as_of): sessions and poor sessions (measure's
-- subscriber_cell_day, the indicator tree's poor-session condition) and the median DL throughput of the
-- data sessions that report one (xDR).
WITH poor AS (SELECT c.site_id, c.rat, sum(d.sessions) AS sessions, sum(d.poor_sessions) AS poor_sessions
              FROM subscriber_cell_day d JOIN cells c USING (cell_id) WHERE d.day >= $start AND d.day < $as_of GROUP BY ALL),
     thr AS (SELECT c.site_id, x.rat, median(x.throughput_dl_kbps) AS median_dl_kbps
             FROM xdr x JOIN cells c USING (cell_id)
             WHERE x.start_time >= $start AND x.start_time < $as_of AND x.throughput_dl_kbps IS NOT NULL GROUP BY ALL)
SELECT site_id, rat, sessions, poor_sessions, poor_sessions / sessions AS poor_share, thr.median_dl_kbps
FROM poor LEFT JOIN thr USING (site_id, rat)
ORDER BY site_id, rat
