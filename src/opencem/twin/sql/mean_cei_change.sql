-- The mean CEI change over the subscriber-days the what-if touched.
SELECT avg(d_cei) AS d_cei FROM cei_delta
