-- Each subscriber's {count} per {keys} over score's window of days, kept as state (nps/places.py): the state
-- of an earlier window ({prev}; no rows on a first run), plus the days [$add_from, $add_to) of {table}, less
-- the days [$drop_from, $drop_to) that have left the window. The counts are integers, so a state advanced
-- day by day is the state built from the whole window. A subscriber is keyed by the first 30 hex digits of
-- their pseudonym as two 60-bit integers (sub_hi, sub_lo; nps/places.py): grouping 16 M pairs on integers is faster than
-- on the 32-character text, and the files are about half the size.
WITH days AS (
  SELECT subscriber_id, {keys}, {count} AS n FROM {table} WHERE day >= $add_from AND day < $add_to
  UNION ALL
  SELECT subscriber_id, {keys}, -{count} AS n FROM {table} WHERE day >= $drop_from AND day < $drop_to)
SELECT sub_hi, sub_lo, {keys}, sum(n) AS n FROM (
  SELECT sub_hi, sub_lo, {keys}, n FROM {prev}
  UNION ALL
  SELECT {sub_hi} AS sub_hi, {sub_lo} AS sub_lo, {keys}, n FROM days)
GROUP BY ALL
HAVING sum(n) <> 0
