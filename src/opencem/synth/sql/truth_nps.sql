-- The census NPS on the first and the last day of the run.
SELECT min(date), max(date), first(nps_census ORDER BY date), last(nps_census ORDER BY date) FROM nps_daily
