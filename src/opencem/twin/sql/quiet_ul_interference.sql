-- The cells' quiet UL interference: the 30 % quantile over cell x 15 minutes.
SELECT quantile_cont(ul_interference_dbm, 0.3) AS ul_interference_dbm FROM kpi_cell_15min
