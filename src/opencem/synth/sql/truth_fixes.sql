-- The fixes applied during the run and their true effect.
SELECT fix_id, action, target, fix_date, subscribers_affected, mean_throughput_kbps_with, mean_throughput_kbps_without,
       nps_with, nps_without
FROM fixes ORDER BY 1
