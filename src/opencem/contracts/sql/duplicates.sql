-- Rows whose key ({key}) an earlier row of the file already has.
SELECT __row FROM (SELECT __row, row_number() OVER (PARTITION BY {key} ORDER BY __row) AS n FROM validated)
WHERE n > 1
