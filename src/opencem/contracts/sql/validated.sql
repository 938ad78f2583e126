-- Every row of the file typed, with the indexes of the rules it breaks (__fails).
-- {raw}: each column's raw value as "r:<column>" (NULL for an optional column the file lacks);
-- {typed}: each column cast to its contract type as "<column>" (NULL where the raw value does not cast);
-- {flags}: one CASE per rule, giving the rule's index when the row breaks it.
WITH r AS (SELECT __row, {raw} FROM raw),
c AS (SELECT *, {typed} FROM r)
SELECT *, list_filter([{flags}], lambda x: x IS NOT NULL) AS __fails FROM c
