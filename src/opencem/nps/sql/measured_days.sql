-- The first and last day of the measured experience.
SELECT min(day) AS first_day, max(day) AS last_day FROM cei_subscriber_day
