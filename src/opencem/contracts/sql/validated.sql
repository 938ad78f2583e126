-- Every row of the file typed, with the indexes of the rules it breaks (__fails).
-- {cast}: each column as its raw value "r:<column>" and its typed value "<column>";
-- {flags}: one CASE per rule, giving the rule's index when the row breaks it.
WITH c AS (SELECT __row, {cast} FROM src)
SELECT *, list_filter([{flags}], lambda x: x IS NOT NULL) AS __fails FROM c
