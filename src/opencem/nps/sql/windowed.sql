{name} AS (  -- the aggregates of one source over the {days} days before as_of (age = days before)
  SELECT subscriber_id, as_of, {aggregates} FROM (
    SELECT t.*, r.as_of, r.history_days, date_diff('day', t.day, r.as_of) AS age FROM {pairs} JOIN {table} t
      ON {match}t.day < r.as_of AND t.day >= r.as_of - {days})
  GROUP BY subscriber_id, as_of)
