-- The grids with sessions (their H3 neighbours pool with them).
SELECT DISTINCT grid FROM gh_stats ORDER BY grid
