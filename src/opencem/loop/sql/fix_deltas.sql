-- The treated subscribers' differences-in-differences (`treated_in`) averaged per group of one
-- subscribers' column (plan, home area), named $dimension, for groups of at least $min_group subscribers.
SELECT $dimension AS dimension, s.{column} AS "group", count(*) AS subscribers,
       round(avg(nps), 2) AS nps, round(avg(cei), 2) AS cei, round(avg(dou_mb), 2) AS dou_mb,
       round(1000 * avg(complaints), 2) AS complaints_per_1k, round(100 * avg(churned), 3) AS churn_pct,
       round(sum(revenue_eur), 2) AS revenue
FROM treated_in t JOIN subscribers s USING (subscriber_id) GROUP BY 1, 2
HAVING count(*) >= $min_group ORDER BY 2
