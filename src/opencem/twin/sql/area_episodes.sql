-- One row per area episode (its grid-hours in ep_units, its sessions in area_sessions, none for one PM saw in hours
-- without a session): span, footprint, sessions and subscribers touched,
-- the revenue of those with a poor session, its cause (cause_in), the poor-session weight of each grid and
-- the mean position of the cells it names (their sites: where a team would go).
WITH u AS (SELECT episode_id, count(*) AS grid_hours, count(DISTINCT grid) AS grids, min(hour) AS start_time,
                  max(hour) + INTERVAL 1 HOUR AS end_time, round(max(z), 3) AS max_z, arg_max(signal, z) AS main_signal,
                  list(DISTINCT grid ORDER BY grid) AS grid_list FROM ep_units GROUP BY episode_id),
a AS (SELECT episode_id, count(*) AS sessions, CAST(sum(CASE WHEN poor THEN 1 ELSE 0 END) AS BIGINT) AS poor_sessions,
             count(DISTINCT subscriber_id) AS subscribers,
             count(DISTINCT CASE WHEN poor THEN subscriber_id END) AS affected_subscribers FROM area_sessions GROUP BY episode_id),
v AS (SELECT episode_id, round(sum(arpu_monthly), 2) AS affected_arpu FROM (
        SELECT DISTINCT episode_id, subscriber_id, arpu_monthly FROM area_sessions WHERE poor) GROUP BY episode_id),
w AS (  -- where the poor sessions are: centre of the footprint weighted by them
      SELECT episode_id, grid, CAST(sum(CASE WHEN poor THEN 1 ELSE 0 END) AS DOUBLE) + 0.1 AS weight FROM area_sessions GROUP BY ALL),
p AS (  -- the mean of the named cells' sites, each site once (a site with more bands is not more the fault's place)
      SELECT episode_id, avg(lat) AS cells_lat, avg(lon) AS cells_lon FROM (
        SELECT episode_id, k.site_id, avg(k.lat) AS lat, avg(k.lon) AS lon
        FROM (SELECT episode_id, unnest(cells) AS cell_id FROM cause_in) JOIN cells k USING (cell_id) GROUP BY ALL)
      GROUP BY episode_id),
pm_seen AS (  -- episodes a PM counter placed in hours that may carry no session (cell_events): the only ones kept without
              -- one; an experience or xDR signal without a session in its own grid-hours is a neighbour's pooled excess
      SELECT DISTINCT episode_id FROM ep_units WHERE signal IN ('cell_down', 'ul_interference', 'link_thp', 'prb_surge'))
SELECT u.episode_id, 'area' AS kind, u.start_time, u.end_time, u.grid_hours, u.grids, u.max_z, u.main_signal,
       coalesce(a.sessions, 0) AS sessions, coalesce(a.poor_sessions, 0) AS poor_sessions, coalesce(a.subscribers, 0) AS subscribers,
       coalesce(a.affected_subscribers, 0) AS affected_subscribers, coalesce(v.affected_arpu, 0) AS affected_arpu,
       c.cause, c.confidence, c.cells, c.evidence, CAST(NULL AS VARCHAR) AS device_model,
       u.grid_list, (SELECT list(struct_pack(grid := w.grid, weight := w.weight)) FROM w WHERE w.episode_id = u.episode_id) AS weights,
       p.cells_lat, p.cells_lon
FROM u LEFT JOIN a USING (episode_id) LEFT JOIN v USING (episode_id) JOIN cause_in c USING (episode_id) LEFT JOIN p USING (episode_id)
WHERE a.episode_id IS NOT NULL OR u.episode_id IN (SELECT episode_id FROM pm_seen)
ORDER BY u.episode_id
