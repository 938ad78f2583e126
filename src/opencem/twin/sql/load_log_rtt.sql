-- The network's median cell-hour ln RTT per tenth of PRB load: the queueing delay a cell's load explains,
-- which added capacity takes away with the load (the rest of a cell's RTT is its transport and core).
WITH rtt AS (SELECT cell_id, date_trunc('hour', start_time) AS h, median(ln(greatest(rtt_ms, 1))) AS log_rtt
             FROM xdr GROUP BY ALL),
load AS (SELECT cell_id, date_trunc('hour', period_start) AS h, avg(prb_util_dl) AS prb
         FROM kpi_cell_15min WHERE prb_util_dl IS NOT NULL GROUP BY ALL)
SELECT least(floor(prb * 10), 9) AS band, median(log_rtt) AS log_rtt
FROM rtt JOIN load USING (cell_id, h) GROUP BY 1 ORDER BY 1
