-- Size, network NPS (mean P(promoter) - mean P(detractor) of the members, x 100), churn risk (mean
-- probability of porting out within 4 months; empty without churn scores) and ARPU of every segment
-- (`labels`: one row per dimension, segment and member) of the scored base (`members`).
SELECT l.dimension, l.segment, count(*) AS subscribers,
       round(100 * (avg(m.p_promoter) - avg(m.p_detractor)), 2) AS nps,
       round(avg(m.p_4m), 4) AS churn_risk,
       round(avg(m.arpu_monthly), 2) AS arpu_mean,
       round(sum(m.arpu_monthly), 2) AS arpu_total
FROM labels l JOIN members m USING (subscriber_id)
GROUP BY ALL
ORDER BY l.dimension, l.segment
