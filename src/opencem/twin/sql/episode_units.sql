-- The grid-hours of each area episode and the signal that flagged them.
SELECT * EXCLUDE (z, site_id) FROM ep_units WHERE episode_id IN (SELECT episode_id FROM episodes_out) ORDER BY episode_id, grid, hour
