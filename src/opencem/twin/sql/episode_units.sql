-- The grid-hours of each area episode and the signal that flagged them.
SELECT * EXCLUDE (z) FROM ep_units ORDER BY episode_id, grid, hour
