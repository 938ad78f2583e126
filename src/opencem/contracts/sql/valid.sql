-- The typed rows that break no rule, with their row in the file ({columns}: the contract's columns).
SELECT __row, {columns} FROM validated
WHERE len(__fails) = 0 AND __row NOT IN (SELECT __row FROM duplicates)
