-- Subscribers seen per grid and hour in [$start, $end), for the grids asked.
SELECT grid, hour, subscribers
FROM state_grid_hour
WHERE hour >= $start AND hour < $end AND list_contains($grids, grid)
