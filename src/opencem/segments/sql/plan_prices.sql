-- Each plan's monthly list price on $as_of (the tariff row in force that day), and the median ARPU of its
-- subscribers, which stands in for the price when the operator has no tariff table.
WITH price AS (SELECT plan, max(monthly_price) AS monthly_price FROM tariffs
               WHERE valid_from <= $as_of AND (valid_to IS NULL OR valid_to >= $as_of) GROUP BY ALL)
SELECT s.plan, count(*) AS subscribers, median(s.arpu_monthly) AS median_arpu, any_value(price.monthly_price) AS monthly_price
FROM subscribers s LEFT JOIN price USING (plan)
GROUP BY ALL ORDER BY s.plan
