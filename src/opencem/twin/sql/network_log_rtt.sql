-- The network's median ln RTT per hour of day (what a fixed transport link gives back).
SELECT hour(start_time) AS hod, median(ln(greatest(rtt_ms, 1))) AS log_rtt FROM xdr GROUP BY 1
