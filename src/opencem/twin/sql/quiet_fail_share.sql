-- The network's quiet failure share: the 30 % quantile over cell-hours.
SELECT quantile_cont(f, 0.3) AS fail_share
FROM (SELECT avg(CASE WHEN success THEN 0E0 ELSE 1E0 END) AS f FROM xdr GROUP BY cell_id, date_trunc('hour', start_time))
