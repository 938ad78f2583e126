-- Rows that name a subscriber and an as-of day, each with that subscriber's features as of that day, in
-- the rows' order.
SELECT r.* EXCLUDE (_row), f.* EXCLUDE (subscriber_id, as_of)
FROM rows_in r JOIN rows_features f ON f.subscriber_id = r.subscriber_id AND f.as_of = r.as_of
ORDER BY r._row
