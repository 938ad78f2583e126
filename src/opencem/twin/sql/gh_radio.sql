-- Per grid x hour, the radio sample counts and sums.
SELECT grid, hour, count(*) AS n_mr, sum(rsrp_dbm) AS s_rsrp, sum(sinr_db) AS s_sinr FROM mr GROUP BY grid, hour
