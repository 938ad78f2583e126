-- One row per radio sample of the window with its grid and hour.
SELECT r.*, g.grid, date_trunc('hour', r.sample_time) AS hour
FROM ({mr_placed}) r
JOIN grid_map g ON g.lat_key = CAST(round(r.lat * $scale) AS BIGINT) AND g.lon_key = CAST(round(r.lon * $scale) AS BIGINT)
