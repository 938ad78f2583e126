-- Per episode, the failed-session share in the grids around it (ep_ring: within about a kilometre, its own
-- grids left out) in its hours, against the same grids at the same hours of day on the other days: how far
-- the failures it shows are those of a wider failure it sits in (a DNS failure over part of the city).
-- Reads ep_ring, ep_units and sess_cell_hour.
WITH eh AS (SELECT DISTINCT episode_id, hour FROM ep_units),
ehod AS (SELECT DISTINCT episode_id, hour(hour) AS hod FROM ep_units),
r AS (
  SELECT ring.episode_id, (eh.hour IS NOT NULL) AS inside, sum(x.n) AS n, sum(x.fail) AS fail
  FROM ep_ring ring JOIN sess_cell_hour x ON x.grid = ring.grid
  JOIN ehod ON ehod.episode_id = ring.episode_id AND ehod.hod = hour(x.hour)
  LEFT JOIN eh ON eh.episode_id = ring.episode_id AND eh.hour = x.hour
  GROUP BY ring.episode_id, (eh.hour IS NOT NULL))
SELECT episode_id,
  sum(fail) FILTER (WHERE inside) / nullif(sum(n) FILTER (WHERE inside), 0)
    - sum(fail) FILTER (WHERE NOT inside) / nullif(sum(n) FILTER (WHERE NOT inside), 0) AS d_fail_around
FROM r GROUP BY episode_id
