-- Every session of a device episode (device_runs): its device model on the days of its run.
SELECT r.episode_id, x.subscriber_id, x.arpu_monthly, x.poor, x.grid
FROM device_runs r JOIN sess x ON x.device_model = r.device_model AND x.day >= r.first_day AND x.day < r.end_day
