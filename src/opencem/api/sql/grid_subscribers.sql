-- Distinct subscribers seen in each grid over [$start, $end) (the group a grid's figures describe).
SELECT g.grid, count(DISTINCT s.subscriber_id) AS subscribers
FROM scores s JOIN (SELECT DISTINCT grid FROM state_grid_hour WHERE hour >= $start AND hour < $end) g ON g.grid = s.grid
GROUP BY g.grid
