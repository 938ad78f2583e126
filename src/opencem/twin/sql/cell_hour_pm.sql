-- Per cell x hour ($start <= hour < $end) the PM conditions the twin compares with the cell's peers or its own
-- usual: DL PRB load, UL interference-plus-noise, ln of the mean DL per-user throughput (log_thp), and the UL
-- interference above the median cell of the same band in the same hour (ul_vs_band). Peers, not the cell's own
-- past, so an interferer present since before the window shows as clearly as a new one. NULL where the OSS exports
-- no such counter.
WITH ch AS (
  SELECT k.cell_id, date_trunc('hour', k.period_start) AS hour, avg(k.prb_util_dl) AS prb, avg(k.ul_interference_dbm) AS ul,
         avg(ln(k.ue_thp_dl_mbps)) FILTER (WHERE k.ue_thp_dl_mbps > 0) AS log_thp
  FROM kpi_cell_15min k
  WHERE k.pm_reported AND k.period_start >= $start AND k.period_start < $end
  GROUP BY ALL)
SELECT ch.*, c.band, ch.ul - median(ch.ul) OVER (PARTITION BY c.band, ch.hour) AS ul_vs_band
FROM ch JOIN cells c USING (cell_id)
