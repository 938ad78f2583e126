-- The top of the network's normal ln RTT per hour of day (its 75th percentile over sessions): what a
-- repaired transport link gives back. Not the median: a link that is healthy but slower than half the
-- network's (a longer path, a rural site) is not faulty, and repairing it would give nothing.
SELECT hour(start_time) AS hod, quantile_cont(ln(greatest(rtt_ms, 1)), 0.75) AS log_rtt FROM xdr GROUP BY 1
