-- The observed subscriber-days with the what-if's CEI change (cei_delta) applied, kept within 0..100.
SELECT c.* REPLACE (CASE WHEN c.cei IS NULL THEN NULL ELSE least(100, greatest(0, c.cei + coalesce(d.d_cei, 0))) END AS cei)
FROM cei_subscriber_day_observed c LEFT JOIN cei_delta d USING (subscriber_id, day)
