-- The first and last hour of the twin's grid state.
SELECT min(hour) AS first_hour, max(hour) AS last_hour FROM state_grid_hour
