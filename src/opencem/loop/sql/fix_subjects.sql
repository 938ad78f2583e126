-- Who a fix's verification compares: the treated (at least $min_sessions sessions in its scope in
-- [$start, $end)) and the possible controls (active then, and with no session near the scope, on the
-- other cells of its sites or transport links, from $start until $post_end).
WITH act AS (SELECT subscriber_id, count(*) FILTER (WHERE {scope}) AS on_scope
             FROM xdr WHERE start_time >= CAST($start AS TIMESTAMP) AND start_time < CAST($end AS TIMESTAMP) GROUP BY 1),
     near AS (SELECT DISTINCT subscriber_id FROM xdr
              WHERE start_time >= CAST($start AS TIMESTAMP) AND start_time < CAST($post_end AS TIMESTAMP) AND {near})
SELECT subscriber_id, on_scope >= $min_sessions AS treated FROM act
WHERE on_scope >= $min_sessions OR subscriber_id NOT IN (SELECT subscriber_id FROM near)
ORDER BY subscriber_id
