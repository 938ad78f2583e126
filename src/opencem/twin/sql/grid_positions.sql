-- The distinct positions of the placed sessions and radio samples, snapped to $decimals decimals.
SELECT DISTINCT round(lat, $decimals) AS lat, round(lon, $decimals) AS lon
FROM (SELECT pos_lat AS lat, pos_lon AS lon FROM sess_placed UNION ALL SELECT lat, lon FROM mr_placed)
WHERE lat IS NOT NULL AND lon IS NOT NULL
