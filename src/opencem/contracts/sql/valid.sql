-- The typed rows that break no rule, in file order ({columns}: the contract's columns).
SELECT {columns} FROM validated
WHERE len(__fails) = 0 AND __row NOT IN (SELECT __row FROM duplicates) ORDER BY __row
