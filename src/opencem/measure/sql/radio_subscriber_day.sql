-- Each subscriber's measurement reports per day, kept as counts and sums so that any window of days
-- gives the mean RSRP / SINR and the share of weak reports exactly; the NPS features read this, not the
-- reports themselves. Weak: RSRP below {poor_rsrp} dBm, SINR below {poor_sinr} dB.
SELECT subscriber_id, CAST(sample_time AS DATE) AS day,
  count(*) AS reports,
  count(rsrp_dbm) AS rsrp_reports,
  sum(rsrp_dbm) AS rsrp_sum,
  sum(CASE WHEN rsrp_dbm < {poor_rsrp} THEN 1 ELSE 0 END) AS rsrp_poor,
  count(sinr_db) AS sinr_reports,
  sum(sinr_db) AS sinr_sum,
  sum(CASE WHEN sinr_db < {poor_sinr} THEN 1 ELSE 0 END) AS sinr_poor
FROM {source}
GROUP BY subscriber_id, CAST(sample_time AS DATE)
