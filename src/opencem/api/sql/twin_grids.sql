-- Every grid the twin has seen (the population density API's coverage).
SELECT DISTINCT grid FROM state_grid_hour
