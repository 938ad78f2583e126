-- Every subscriber's marketing consent (a missing answer is no consent): lists built by other stages, such as
-- the churn stage's retention list, are filtered with it.
SELECT subscriber_id, COALESCE(consent_marketing, false) AS consent_marketing FROM subscribers
