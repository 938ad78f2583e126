-- Churn decisions per cause: port-outs inside the window, and all.
SELECT cause, count(*) FILTER (in_window), count(*) FROM churners GROUP BY 1 ORDER BY 3 DESC
