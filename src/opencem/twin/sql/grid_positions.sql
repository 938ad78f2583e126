-- The distinct positions of the placed sessions and radio samples, snapped to 1 / $scale degrees: integer keys,
-- round(x * $scale), which both engines compute alike (ROUND(x, n) may differ between them near a tie).
SELECT DISTINCT CAST(round(lat * $scale) AS BIGINT) AS lat_key, CAST(round(lon * $scale) AS BIGINT) AS lon_key
FROM (SELECT pos_lat AS lat, pos_lon AS lon FROM sess_placed UNION ALL SELECT lat, lon FROM mr_placed)
WHERE lat IS NOT NULL AND lon IS NOT NULL
