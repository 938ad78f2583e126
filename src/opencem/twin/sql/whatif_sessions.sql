-- The sessions of [$start, $end) in the scope (a condition on xdr): every xDR column, the conditions the
-- session met (its cell's channel bandwidth, PM load and interference of the cell in that 15 minutes, the
-- subscriber's radio on the cell that hour, the cell-hour's RTT and failure context, the device model's
-- poor share that day), and the summary outcomes the what-if reports (poor, ln RTT, ln throughput).
WITH x AS (SELECT * FROM xdr
           WHERE start_time >= CAST($start AS TIMESTAMP) AND start_time < CAST($end AS TIMESTAMP) AND {scope}),
ctx AS (SELECT cell_id, date_trunc('hour', start_time) AS h, median(ln(greatest(rtt_ms, 1))) AS ctx_log_rtt,
               avg(CASE WHEN success THEN 0E0 ELSE 1E0 END) AS ctx_fail
        FROM xdr WHERE cell_id IN (SELECT DISTINCT cell_id FROM x)
          AND CAST(start_time AS DATE) BETWEEN (SELECT min(CAST(start_time AS DATE)) FROM x) AND (SELECT max(CAST(start_time AS DATE)) FROM x)
        GROUP BY ALL),
dev AS (SELECT s.device_model, CAST(x.start_time AS DATE) AS day, avg(CASE WHEN {poor_session} THEN 1E0 ELSE 0E0 END) AS ctx_device_poor
        FROM xdr x JOIN subscribers s USING (subscriber_id)
        WHERE CAST(x.start_time AS DATE) BETWEEN (SELECT min(CAST(start_time AS DATE)) FROM x) AND (SELECT max(CAST(start_time AS DATE)) FROM x)
        GROUP BY ALL),
radio AS (SELECT subscriber_id, cell_id, date_trunc('hour', sample_time) AS h, median(rsrp_dbm) AS rsrp_dbm, median(sinr_db) AS sinr_db
          FROM radio_samples WHERE cell_id IN (SELECT DISTINCT cell_id FROM x) GROUP BY ALL)
SELECT x.*, sub.device_model, hour(x.start_time) AS hod, ln(c.bandwidth_mhz) AS log_bandwidth, k.prb_util_dl, k.ul_interference_dbm, r.rsrp_dbm, r.sinr_db,
       ctx.ctx_log_rtt, ctx.ctx_fail, dev.ctx_device_poor,
       CASE WHEN {poor_session} THEN 1 ELSE 0 END AS poor,
       ln(greatest(x.rtt_ms, 1)) AS log_rtt, ln(greatest(x.throughput_dl_kbps, 1)) AS log_thp
FROM x JOIN subscribers sub USING (subscriber_id)
LEFT JOIN cells c ON c.cell_id = x.cell_id
LEFT JOIN kpi_cell_15min k ON k.cell_id = x.cell_id AND k.period_start = date_trunc('hour', x.start_time) + (minute(x.start_time) // 15) * INTERVAL 15 MINUTE
LEFT JOIN ctx ON ctx.cell_id = x.cell_id AND ctx.h = date_trunc('hour', x.start_time)
LEFT JOIN dev ON dev.device_model = sub.device_model AND dev.day = CAST(x.start_time AS DATE)
LEFT JOIN radio r ON r.subscriber_id = x.subscriber_id AND r.cell_id = x.cell_id AND r.h = date_trunc('hour', x.start_time)
ORDER BY x.session_id
