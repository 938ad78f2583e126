-- Size, network NPS (mean P(promoter) - mean P(detractor) of the members, x 100), churn risk (mean
-- probability of porting out within 4 months; empty without churn scores) and ARPU of every segment
-- (`labels`: one row per dimension, segment and member) of the scored base (`members`). Sums are taken in
-- fixed point, which is exact and so independent of the order the engine's threads add in.
SELECT l.dimension, l.segment, count(*) AS subscribers,
       CAST(round(100 * (avg(CAST(m.p_promoter AS DECIMAL(38, 12))) - avg(CAST(m.p_detractor AS DECIMAL(38, 12)))), 2) AS DOUBLE) AS nps,
       CAST(round(avg(CAST(m.p_4m AS DECIMAL(38, 12))), 4) AS DOUBLE) AS churn_risk,
       CAST(round(avg(CAST(m.arpu_monthly AS DECIMAL(38, 6))), 2) AS DOUBLE) AS arpu_mean,
       CAST(round(sum(CAST(m.arpu_monthly AS DECIMAL(38, 6))), 2) AS DOUBLE) AS arpu_total
FROM labels l JOIN members m USING (subscriber_id)
GROUP BY ALL
ORDER BY l.dimension, l.segment
