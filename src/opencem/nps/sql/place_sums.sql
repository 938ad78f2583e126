-- Each subscriber's {count} per {keys} over score's window of days, kept as state (nps/places.py): the state
-- of an earlier window ({prev}; no rows on a first run), plus the days [$add_from, $add_to) of {table}, less
-- the days [$drop_from, $drop_to) that have left the window. The counts are integers, so a state advanced
-- day by day is the state built from the whole window.
SELECT subscriber_id, {keys}, sum(n) AS n FROM (
  SELECT subscriber_id, {keys}, n FROM {prev}
  UNION ALL
  SELECT subscriber_id, {keys}, {count} AS n FROM {table} WHERE day >= $add_from AND day < $add_to
  UNION ALL
  SELECT subscriber_id, {keys}, -{count} AS n FROM {table} WHERE day >= $drop_from AND day < $drop_to)
GROUP BY ALL
HAVING sum(n) <> 0
