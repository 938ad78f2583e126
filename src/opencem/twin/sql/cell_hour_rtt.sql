-- One day's median session round trip (ln ms) and mean DL PRB load per serving cell x hour, over the cell-hours
-- with 5 sessions that have an RTT at least (cell_events.sql: a chronically slow cell).
SELECT cell_id, hour, median(ln(greatest(rtt_ms, 1))) AS log_rtt, avg(prb_util_dl) AS prb
FROM sess WHERE rtt_ms IS NOT NULL GROUP BY cell_id, hour HAVING count(*) >= 5
