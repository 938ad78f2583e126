-- The network evidence of each candidate (`cand`) over the $days days before $as_of: the cell with most of
-- their poor sessions (the first cell id on a tie), its site and place, how many of their sessions there
-- were poor, and on how many days.
WITH w AS (
  SELECT s.subscriber_id, s.cell_id, sum(s.poor_sessions) AS poor, sum(s.sessions) AS sessions,
         count(DISTINCT CASE WHEN s.poor_sessions > 0 THEN s.day END) AS poor_days
  FROM subscriber_cell_day s JOIN cand USING (subscriber_id)
  WHERE s.day < $as_of AND s.day >= $as_of - $days GROUP BY ALL
),
top AS (
  SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY subscriber_id ORDER BY poor DESC, cell_id) AS k FROM w)
  WHERE k = 1 AND poor > 0
)
SELECT top.subscriber_id, top.cell_id AS evidence_cell, c.site_id AS evidence_site, c.lat AS evidence_lat, c.lon AS evidence_lon,
       top.poor AS evidence_poor_sessions, top.sessions AS evidence_sessions, top.poor_days AS evidence_poor_days
FROM top LEFT JOIN cells c ON c.cell_id = top.cell_id
ORDER BY top.subscriber_id
