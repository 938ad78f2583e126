-- The subscriber's measurement reports by day, for the windowed radio features.
SELECT subscriber_id, CAST(sample_time AS DATE) AS day, rsrp_dbm, sinr_db FROM radio_samples
