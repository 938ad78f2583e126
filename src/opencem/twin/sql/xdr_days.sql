-- The first and last day of the sessions.
SELECT min(CAST(start_time AS DATE)) AS first_day, max(CAST(start_time AS DATE)) AS last_day FROM xdr
