-- Cells bad on most days of [$start, $end) against the other cells of the day, with their evidence.
-- A cell-day (at least $min_sessions sessions) is bad when its poor-session share is $chronic_z robust z
-- above the day's cells; a chronic cell is bad on at least $chronic_share of its days. Evidence: busy-hour
-- PRB load (p95), round trip and uplink interference against the network's, median RSRP.
-- The poor-session condition comes from the indicator tree.
WITH cd AS (SELECT cell_id, CAST(start_time AS DATE) AS day, count(*) AS n,
                   avg(CASE WHEN {poor_session} THEN 1E0 ELSE 0E0 END) AS poor, median(ln(greatest(rtt_ms, 1))) AS lrtt
            FROM xdr WHERE start_time >= CAST($start AS TIMESTAMP) AND start_time < CAST($end AS TIMESTAMP)
            GROUP BY ALL HAVING count(*) >= $min_sessions),
     d AS (SELECT day, median(poor) AS med, median(lrtt) AS net_lrtt FROM cd GROUP BY day),
     mad AS (SELECT cd.day, 1.4826 * median(abs(cd.poor - d.med)) AS mad FROM cd JOIN d USING (day) GROUP BY cd.day),
     z AS (SELECT cd.*, (cd.poor - d.med) / greatest(m.mad, 0.005) AS z, cd.lrtt - d.net_lrtt AS d_lrtt
           FROM cd JOIN d USING (day) JOIN mad m USING (day)),
     c AS (SELECT cell_id, count(*) AS days, count(*) FILTER (WHERE z >= $chronic_z) AS bad_days,
                  count(DISTINCT day) FILTER (WHERE z >= $chronic_z AND day >= $recent) AS recent_bad,
                  median(z) AS z, sum(n) AS sessions, CAST(sum(n * poor) AS BIGINT) AS poor_sessions, median(d_lrtt) AS d_lrtt
           FROM z GROUP BY cell_id),
     k AS (SELECT cell_id, quantile_cont(prb_util_dl, 0.95) AS prb_p95, median(ul_interference_dbm) AS ul FROM kpi_cell_15min
           WHERE period_start >= CAST($start AS TIMESTAMP) AND period_start < CAST($end AS TIMESTAMP) GROUP BY 1),
     r AS (SELECT cell_id, median(rsrp_dbm) AS rsrp FROM radio_samples
           WHERE sample_time >= CAST($start AS TIMESTAMP) AND sample_time < CAST($end AS TIMESTAMP) GROUP BY 1)
SELECT c.*, k.prb_p95, k.ul - (SELECT median(ul) FROM k) AS d_ul, r.rsrp, cells.site_id, cells.transport_link_id, cells.lat, cells.lon
FROM c JOIN cells USING (cell_id) LEFT JOIN k USING (cell_id) LEFT JOIN r USING (cell_id)
WHERE c.bad_days >= $chronic_share * c.days ORDER BY c.cell_id
