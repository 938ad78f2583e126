-- Injected faults per cause.
SELECT cause, count(*) FROM faults GROUP BY 1 ORDER BY 1
