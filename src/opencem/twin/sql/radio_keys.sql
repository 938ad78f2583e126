-- One row per radio sample key: the placement runs once per (subscriber, cell, time).
SELECT DISTINCT subscriber_id, cell_id, sample_time FROM radio_samples
