-- One day's sessions and poor sessions per grid x hour x device model (null: unknown device): what
-- device_days.sql compares each model with, so it reads these rows and not every session again.
SELECT grid, hour, day, device_model, count(*) AS n, sum(CASE WHEN poor THEN 1 ELSE 0 END) AS poor
FROM sess GROUP BY grid, hour, day, device_model
