-- One row per (row, column) that breaks a rule, with its raw value ({value}: a CASE over the columns).
-- The file is scanned once: the rows with a failed rule or a duplicate key, each unnested to its rules.
WITH bad AS (
  SELECT v.*, unnest(CASE WHEN d.__row IS NULL THEN v.__fails ELSE list_append(v.__fails, $duplicate_rule) END) AS k
  FROM validated v LEFT JOIN duplicates d ON v.__row = d.__row
  WHERE len(v.__fails) > 0 OR d.__row IS NOT NULL)
SELECT $table AS "table", $source_file AS source_file, bad.__row AS row, r."column",
       {value} AS value, min(r.reason) AS reason
FROM bad JOIN rules r USING (k)
GROUP BY ALL ORDER BY row, r."column"
