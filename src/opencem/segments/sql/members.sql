-- Every subscriber the NPS stage scored as of the day (`nps_scores`), with what the segments and campaigns
-- read: value, the network NPS estimate, places, the device's capability and vendor, marketing consent (a
-- missing answer is no consent) and, when the churn model has scored the day (`churn_scores`), the
-- probability of porting out within 4 months and its cause.
SELECT n.subscriber_id, n.plan, n.arpu_monthly, n.value_tier, n.expected_score, n.p_promoter, n.p_detractor,
       n.predicted_class, n.cei_recent, n.device_model, n.home_area, n.grid, n.main_cell,
       s.device_capability, s.device_vendor, COALESCE(s.consent_marketing, false) AS consent_marketing,
       c.p_4m, c.cause AS churn_cause
FROM nps_scores n
LEFT JOIN subscribers s USING (subscriber_id)
LEFT JOIN churn_scores c USING (subscriber_id)
ORDER BY n.subscriber_id
