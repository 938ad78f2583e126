-- Each subscriber's sessions and poor sessions per cell and day (the poor-session condition comes from
-- the indicator tree): a subscriber's main cell, the cell of their poor sessions and a device model's
-- poor share are read from this over any window of days.
SELECT subscriber_id, CAST(start_time AS DATE) AS day, cell_id, count(*) AS sessions,
  sum(CASE WHEN ({poor_session}) THEN 1 ELSE 0 END) AS poor_sessions
FROM xdr
GROUP BY subscriber_id, CAST(start_time AS DATE), cell_id
