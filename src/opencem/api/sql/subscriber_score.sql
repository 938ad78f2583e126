-- One subscriber's NPS score row (the newest as_of).
SELECT as_of, predicted_class, p_promoter, p_passive, p_detractor, expected_score, risk_flag,
       top_network_driver, network_drivers, grid
FROM scores
WHERE subscriber_id = $subscriber
