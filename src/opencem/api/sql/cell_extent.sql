-- The box around the operator's sites (coverage for location verification).
SELECT min(lat) AS lat_min, min(lon) AS lon_min, max(lat) AS lat_max, max(lon) AS lon_max FROM cells
