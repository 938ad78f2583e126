-- Each grid's experience over the twin's grid-hours (`state_grid_hour`) in [$start, $end): mean CEI,
-- poor-session share and subscribers, for grids with at least $min_sessions sessions.
SELECT grid, round(avg(cei), 2) AS cei, round(sum(poor_sessions) / sum(sessions), 4) AS poor_share,
       CAST(max(subscribers) AS BIGINT) AS subscribers
FROM state_grid_hour
WHERE hour >= CAST($start AS TIMESTAMP) AND hour < CAST($end AS TIMESTAMP) AND cei IS NOT NULL
GROUP BY grid HAVING sum(sessions) >= $min_sessions ORDER BY grid
