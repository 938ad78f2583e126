-- Each subscriber's sessions and data volume (down + up) in [$start, $as_of), per service and per part of
-- the day (0: 00-06, 1: 06-12, 2: 12-18, 3: 18-24 local time in $timezone), and their sessions on the RAT
-- $nr_rat. One grouping per row: `service` is NULL on the part-of-day rows and `day_part` on the service rows.
WITH x AS (SELECT subscriber_id, service, rat, volume_dl_bytes + volume_ul_bytes AS bytes,
                  CAST(floor(hour(timezone($timezone, timezone('UTC', start_time))) / 6) AS INTEGER) AS day_part
           FROM xdr WHERE start_time >= $start AND start_time < $as_of)
SELECT subscriber_id, service, day_part, count(*) AS sessions, sum(bytes) AS bytes,
       sum(CASE WHEN rat = $nr_rat THEN 1 ELSE 0 END) AS nr_sessions
FROM x
GROUP BY GROUPING SETS ((subscriber_id, service), (subscriber_id, day_part))
