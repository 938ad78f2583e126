-- Every customer still in the base on $as_of (port-outs before that day leave it), one in $every.
SELECT subscriber_id, CAST($as_of AS DATE) AS as_of FROM (
  SELECT subscriber_id, row_number() OVER (ORDER BY subscriber_id) AS i FROM subscribers
  WHERE subscriber_id NOT IN (SELECT subscriber_id FROM portouts WHERE portout_date < CAST($as_of AS DATE)))
WHERE i % $every = 0 ORDER BY subscriber_id
