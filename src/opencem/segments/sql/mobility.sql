-- Where each subscriber is in [$start, $as_of): their night place (the site with most of their sessions
-- from 21:00 to 06:00 local time in $timezone; the lowest site id on a tie), their day place (most sessions
-- on weekdays 09:00-17:00), the distance between the two in km, the radius of gyration of their located
-- measurement reports (measure's subscriber_position_day) in km, and the sites they use per active day
-- (measure's subscriber_cell_day). Distances: equirectangular, 111.32 km per degree. Sums are taken in fixed
-- point, which is exact and so independent of the order the engine's threads add in.
WITH s AS (SELECT x.subscriber_id, c.site_id, timezone($timezone, timezone('UTC', x.start_time)) AS t
           FROM xdr x JOIN cells c USING (cell_id) WHERE x.start_time >= $start AND x.start_time < $as_of),
     sites AS (SELECT site_id, CAST(avg(CAST(lat AS DECIMAL(38, 12))) AS DOUBLE) AS lat,
                      CAST(avg(CAST(lon AS DECIMAL(38, 12))) AS DOUBLE) AS lon FROM cells GROUP BY ALL),
     night_n AS (SELECT subscriber_id, site_id, count(*) AS n FROM s WHERE hour(t) >= 21 OR hour(t) < 6 GROUP BY ALL),
     night AS (SELECT subscriber_id, min(site_id) AS site_id FROM night_n
               JOIN (SELECT subscriber_id, max(n) AS n FROM night_n GROUP BY ALL) USING (subscriber_id, n) GROUP BY ALL),
     day_n AS (SELECT subscriber_id, site_id, count(*) AS n FROM s WHERE isodow(t) <= 5 AND hour(t) >= 9 AND hour(t) < 17 GROUP BY ALL),
     dayp AS (SELECT subscriber_id, min(site_id) AS site_id FROM day_n
              JOIN (SELECT subscriber_id, max(n) AS n FROM day_n GROUP BY ALL) USING (subscriber_id, n) GROUP BY ALL),
     places AS (SELECT subscriber_id, n.site_id AS night_site, d.site_id AS day_site,
                       111.32 * sqrt(power(dn.lat - dd.lat, 2) + power((dn.lon - dd.lon) * cos(radians(dn.lat)), 2)) AS home_work_km
                FROM night n FULL JOIN dayp d USING (subscriber_id)
                LEFT JOIN sites dn ON dn.site_id = n.site_id LEFT JOIN sites dd ON dd.site_id = d.site_id),
     p AS (SELECT subscriber_id, lat, lon, sum(reports) AS w FROM subscriber_position_day
           WHERE day >= $start AND day < $as_of GROUP BY ALL),
     centre AS (SELECT subscriber_id, CAST(sum(CAST(w * lat AS DECIMAL(38, 12))) / sum(w) AS DOUBLE) AS clat,
                       CAST(sum(CAST(w * lon AS DECIMAL(38, 12))) / sum(w) AS DOUBLE) AS clon, sum(w) AS w FROM p GROUP BY ALL),
     gyr AS (SELECT p.subscriber_id,
                    111.32 * sqrt(CAST(sum(CAST(p.w * (power(p.lat - c.clat, 2) + power((p.lon - c.clon) * cos(radians(c.clat)), 2))
                                                 AS DECIMAL(38, 12))) AS DOUBLE) / any_value(c.w)) AS gyration_km
             FROM p JOIN centre c USING (subscriber_id) GROUP BY ALL),
     spd AS (SELECT subscriber_id, count(DISTINCT (d.day, c.site_id)) / count(DISTINCT d.day) AS sites_per_day
             FROM subscriber_cell_day d JOIN cells c USING (cell_id) WHERE d.day >= $start AND d.day < $as_of GROUP BY ALL)
SELECT subscriber_id, places.night_site, places.day_site, round(places.home_work_km, 3) AS home_work_km,
       round(gyr.gyration_km, 3) AS gyration_km, round(spd.sites_per_day, 3) AS sites_per_day
FROM spd LEFT JOIN places USING (subscriber_id) LEFT JOIN gyr USING (subscriber_id)
