-- The grid-hours of each area episode and the signal that flagged them. A cluster without a session in its
-- grid-hours (an interferer at night, seen only in PM) has no experience to be poor and is no episode.
SELECT * EXCLUDE (z) FROM ep_units WHERE episode_id IN (SELECT episode_id FROM episodes_out) ORDER BY episode_id, grid, hour
