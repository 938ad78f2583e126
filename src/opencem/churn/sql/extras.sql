-- The churn model's own features of each (subscriber_id, as_of) of `requests`, beside the NPS features:
-- slower memories of the experience (a customer decides to leave over weeks), care over $long_days days,
-- the usage trend, and the contract (type, days to the end of the minimum term). Only days before as_of.
-- Real-valued sums are taken in fixed point (DECIMAL) so that two runs agree bit for bit.
WITH hist AS (
  SELECT subscriber_id, as_of,
         greatest(1, least($long_days, date_diff('day', CAST($first_day AS DATE), as_of))) AS long_history
  FROM requests
),
exp AS (
  SELECT r.subscriber_id, r.as_of,
    CAST(sum(CAST(pow($slow, date_diff('day', d.day, r.as_of) - 1) * d.cei AS DECIMAL(38, 12))) AS DOUBLE)
      / NULLIF(CAST(sum(CAST(CASE WHEN d.cei IS NOT NULL THEN pow($slow, date_diff('day', d.day, r.as_of) - 1) END AS DECIMAL(38, 12))) AS DOUBLE), 0)
      AS cei_slow,
    CAST(sum(CAST(d.cei AS DECIMAL(38, 12))) AS DOUBLE) / NULLIF(count(d.cei), 0) AS cei_mean_long,
    avg(CASE WHEN d.cei < $poor_cei THEN 1E0 WHEN d.cei IS NOT NULL THEN 0E0 END) AS poor_day_share_long,
    sum(CASE WHEN date_diff('day', d.day, r.as_of) <= 7 THEN d.sessions_total ELSE 0 END) / 7E0
      / NULLIF(sum(CASE WHEN date_diff('day', d.day, r.as_of) <= 28 THEN d.sessions_total ELSE 0 END)
               / least(28E0, any_value(h.long_history)), 0) AS usage_trend
  FROM requests r JOIN hist h USING (subscriber_id, as_of)
  JOIN cei_subscriber_day d ON d.subscriber_id = r.subscriber_id AND d.day < r.as_of AND d.day >= r.as_of - $long_days
  GROUP BY r.subscriber_id, r.as_of
),
care AS (
  SELECT r.subscriber_id, r.as_of,
    count(c.contact_id) * $long_days * 1E0 / any_value(h.long_history) AS care_contacts_long,
    sum(CASE WHEN c.is_complaint THEN 1 ELSE 0 END) * $long_days * 1E0 / any_value(h.long_history) AS care_complaints_long,
    sum(CASE WHEN NOT c.resolved THEN 1 ELSE 0 END) * $long_days * 1E0 / any_value(h.long_history) AS care_unresolved_long,
    least(365, min(date_diff('day', CAST(c.contact_time AS DATE), r.as_of))) AS days_since_contact
  FROM requests r JOIN hist h USING (subscriber_id, as_of)
  JOIN care_contacts c ON c.subscriber_id = r.subscriber_id AND CAST(c.contact_time AS DATE) < r.as_of
    AND CAST(c.contact_time AS DATE) >= r.as_of - $long_days
  GROUP BY r.subscriber_id, r.as_of
),
contract AS (  -- the contract in force on as_of (the latest one started before it)
  SELECT subscriber_id, as_of, contract_type, commitment_end FROM (
    SELECT r.subscriber_id, r.as_of, k.contract_type, k.commitment_end,
           row_number() OVER (PARTITION BY r.subscriber_id, r.as_of ORDER BY k.start_date DESC, k.contract_type) AS i
    FROM requests r JOIN subscriber_contracts k ON k.subscriber_id = r.subscriber_id AND k.start_date < r.as_of)
  WHERE i = 1
)
SELECT r.subscriber_id, r.as_of,
  round(exp.cei_slow, 6) AS cei_slow, round(exp.cei_mean_long, 6) AS cei_mean_long,
  round(exp.poor_day_share_long, 6) AS poor_day_share_long, round(exp.usage_trend, 6) AS usage_trend,
  round(COALESCE(care.care_contacts_long, 0), 6) AS care_contacts_long,
  round(COALESCE(care.care_complaints_long, 0), 6) AS care_complaints_long,
  round(COALESCE(care.care_unresolved_long, 0), 6) AS care_unresolved_long,
  CAST(COALESCE(care.days_since_contact, 365) AS DOUBLE) AS days_since_contact,
  contract.contract_type,
  CAST(date_diff('day', r.as_of, contract.commitment_end) AS DOUBLE) AS commitment_days_left
FROM requests r
LEFT JOIN exp ON exp.subscriber_id = r.subscriber_id AND exp.as_of = r.as_of
LEFT JOIN care ON care.subscriber_id = r.subscriber_id AND care.as_of = r.as_of
LEFT JOIN contract ON contract.subscriber_id = r.subscriber_id AND contract.as_of = r.as_of
ORDER BY r.subscriber_id, r.as_of
