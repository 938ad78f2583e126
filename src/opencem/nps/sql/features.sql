-- Features of each (subscriber_id, as_of, history_days) of `requests`, from the days before as_of.
-- The placeholders are generated from the feature list (features.py): one windowed CTE per source
-- (windowed.sql) with its aggregates and its join, and the output columns.
WITH {windowed},
plan AS (  -- price contacts per 1,000 subscribers of each plan in the 14 days before as_of
  SELECT a.as_of, s.plan, 1000E0 * count(c.subscriber_id) / any_value(n.n) AS plan_price_contacts
  FROM (SELECT DISTINCT as_of FROM requests) a
  CROSS JOIN subscribers s
  JOIN (SELECT plan, count(*) AS n FROM subscribers GROUP BY plan) n ON n.plan = s.plan
  LEFT JOIN care_contacts c ON c.subscriber_id = s.subscriber_id AND c.category = 'price'
    AND CAST(c.contact_time AS DATE) < a.as_of AND CAST(c.contact_time AS DATE) >= a.as_of - INTERVAL 14 DAY
  GROUP BY a.as_of, s.plan
),
price AS (  -- the plan's price rise over the 90 days before as_of, and how long its price has held
  SELECT r.subscriber_id, r.as_of,
         100E0 * (now.monthly_price / NULLIF(was.monthly_price, 0) - 1) AS price_rise_pct_90,
         least(365, date_diff('day', now.valid_from, r.as_of)) AS price_change_days
  FROM requests r JOIN subscribers b ON b.subscriber_id = r.subscriber_id
  JOIN tariffs now ON now.plan = b.plan AND now.valid_from < r.as_of
    AND (now.valid_to IS NULL OR now.valid_to >= r.as_of - INTERVAL 1 DAY)
  LEFT JOIN tariffs was ON was.plan = b.plan AND was.valid_from <= r.as_of - INTERVAL 90 DAY
    AND (was.valid_to IS NULL OR was.valid_to >= r.as_of - INTERVAL 90 DAY)
),
prior AS (  -- the customer's latest answer before as_of, to a survey or the tracker
  SELECT r.subscriber_id, r.as_of, arg_max(a.score, a.answered) AS last_answer
  FROM requests r JOIN (SELECT subscriber_id, survey_time AS answered, score FROM surveys
                        UNION ALL SELECT subscriber_id, answer_time, score FROM nps_tracker) a
    ON a.subscriber_id = r.subscriber_id AND CAST(a.answered AS DATE) < r.as_of
    AND CAST(a.answered AS DATE) >= r.as_of - INTERVAL 365 DAY
  GROUP BY r.subscriber_id, r.as_of
)
SELECT r.subscriber_id, r.as_of, {select}
FROM requests r
JOIN subscribers b ON b.subscriber_id = r.subscriber_id
{joins}
LEFT JOIN plan ON plan.plan = b.plan AND plan.as_of = r.as_of
LEFT JOIN price ON price.subscriber_id = r.subscriber_id AND price.as_of = r.as_of
LEFT JOIN prior ON prior.subscriber_id = r.subscriber_id AND prior.as_of = r.as_of
ORDER BY r.subscriber_id, r.as_of
