-- Cell-hours the PM alone shows as faulty, with the signal: 'cell_down' (cell_down: no PM, or no traffic in
-- hours it usually carries some) and 'ul_interference' (UL interference at least $interference_db above the
-- median cell of its band in that hour: cell_hour_pm).
SELECT DISTINCT cell_id, date_trunc('hour', period_start) AS hour, 'cell_down' AS signal FROM cell_down
UNION ALL
SELECT cell_id, hour, 'ul_interference' AS signal FROM cell_hour_pm WHERE ul_vs_band >= $interference_db
