-- Every typed row with the indexes of the rules it breaks (__fails).
-- {flags}: one CASE per rule, giving the rule's index when the row breaks it.
SELECT *, list_filter([{flags}], lambda x: x IS NOT NULL) AS __fails FROM typed
