-- For each (subscriber_id, as_of) of `requests`: the month after as_of (1..$months, months of $month_days
-- days counted from as_of) in which the subscriber ported out, 0 for none, and how many of those months
-- are over before $observed_until (port-outs are known up to the day before it). A port-out in a month not
-- yet over is not known: the subscriber counts as still a customer through the months that are.
SELECT r.subscriber_id, r.as_of,
  CAST(least($months, greatest(0, date_diff('day', r.as_of, CAST($observed_until AS DATE)) // $month_days)) AS INTEGER) AS observed_months,
  CAST(CASE WHEN p.portout_date >= r.as_of
              AND date_diff('day', r.as_of, p.portout_date) // $month_days + 1
                  <= least($months, greatest(0, date_diff('day', r.as_of, CAST($observed_until AS DATE)) // $month_days))
            THEN date_diff('day', r.as_of, p.portout_date) // $month_days + 1 ELSE 0 END AS INTEGER) AS event_month
FROM requests r LEFT JOIN (SELECT subscriber_id, min(portout_date) AS portout_date FROM portouts GROUP BY ALL) p
  ON p.subscriber_id = r.subscriber_id
ORDER BY r.subscriber_id, r.as_of
