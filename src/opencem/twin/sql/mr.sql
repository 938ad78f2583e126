-- One row per radio sample of the window with its grid and hour.
SELECT r.*, g.grid, date_trunc('hour', r.sample_time) AS hour
FROM mr_placed r
JOIN grid_map g ON g.lat = round(r.lat, $decimals) AND g.lon = round(r.lon, $decimals)
