-- One row per (row, column) that breaks a rule, with its raw value ({value}: a CASE over the columns).
WITH bad AS (SELECT __row, unnest(__fails) AS k FROM validated WHERE len(__fails) > 0
             UNION ALL SELECT __row, $duplicate_rule FROM duplicates)
SELECT $table AS "table", $source_file AS source_file, bad.__row AS row, r."column",
       {value} AS value, min(r.reason) AS reason
FROM bad JOIN rules r USING (k) JOIN validated USING (__row)
GROUP BY ALL ORDER BY row, r."column"
