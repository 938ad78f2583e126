-- Every row of the file typed.
-- {raw}: each column's raw value as "r:<column>" (NULL for an optional column the file lacks);
-- {typed}: each column cast to its contract type as "<column>" (NULL where the raw value does not cast).
WITH r AS (SELECT __row, {raw} FROM raw)
SELECT *, {typed} FROM r
