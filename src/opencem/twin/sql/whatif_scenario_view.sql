-- A daily table (CEI, radio) as a scenario sees it: the observed rows, with the subscriber-days of
-- whatif_days replaced by the scenario's (measured from its replayed sessions or changed reports).
SELECT o.* FROM {observed} o
LEFT JOIN whatif_days d ON d.subscriber_id = o.subscriber_id AND d.day = o.day
WHERE d.subscriber_id IS NULL
UNION ALL BY NAME
SELECT * FROM {scenario}
