-- The first and last day with xDR sessions.
SELECT min(CAST(start_time AS DATE)) AS first_day, max(CAST(start_time AS DATE)) AS last_day FROM xdr
