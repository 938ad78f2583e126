-- The typed rows that break no rule, with their row in the file ({columns}: the contract's columns): every
-- row but those of the quarantine (`quarantined`), so the rules are not evaluated a second time.
SELECT __row, {columns} FROM typed
WHERE __row NOT IN (SELECT "row" FROM quarantined)
