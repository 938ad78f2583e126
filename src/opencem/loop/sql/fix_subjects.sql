-- Who a fix's verification compares: the treated (at least $min_sessions sessions in its scope in
-- [$start, $end)) and the possible controls: active then, and out of reach of every fix of the period
-- from $near_start until $post_end, that is with no session on a cell of the sites or transport links of
-- $near_cells and no handset among $near_models (this fix's and the other fixes' cells and models).
-- A subscriber in reach of another fix too (any session on $other_cells in [$start, $end), or a handset
-- among $other_models) is neither: their change carries part of that fix's effect as well. Each comes with
-- their main cell in [$start, $end) (most sessions, then the first id): subscribers of one cell share its shocks;
-- its position and their handset model say which group of subscribers is like the treated (verify.py).
WITH act AS (SELECT subscriber_id, count(*) FILTER (WHERE {scope}) AS on_scope,
                    count(*) FILTER (WHERE cell_id IN (SELECT unnest($other_cells))) AS on_other
             FROM xdr WHERE start_time >= CAST($start AS TIMESTAMP) AND start_time < CAST($end AS TIMESTAMP) GROUP BY 1),
     reach AS (SELECT cell_id FROM cells
               WHERE site_id IN (SELECT site_id FROM cells WHERE cell_id IN (SELECT unnest($near_cells)))
                  OR transport_link_id IN (SELECT transport_link_id FROM cells WHERE cell_id IN (SELECT unnest($near_cells)))),
     main AS (SELECT subscriber_id, cell_id FROM (
                SELECT subscriber_id, cell_id, count(*) AS n FROM xdr
                WHERE start_time >= CAST($start AS TIMESTAMP) AND start_time < CAST($end AS TIMESTAMP) GROUP BY ALL)
              QUALIFY row_number() OVER (PARTITION BY subscriber_id ORDER BY n DESC, cell_id) = 1),
     near AS (SELECT DISTINCT subscriber_id FROM xdr
              WHERE start_time >= CAST($near_start AS TIMESTAMP) AND start_time < CAST($post_end AS TIMESTAMP)
                AND cell_id IN (SELECT cell_id FROM reach)
              UNION
              SELECT subscriber_id FROM subscribers WHERE device_model IN (SELECT unnest($near_models)))
SELECT subscriber_id, on_scope >= $min_sessions AS treated, main.cell_id AS main_cell, c.lat AS main_lat, c.lon AS main_lon,
       s.device_model
FROM act JOIN main USING (subscriber_id) JOIN subscribers s USING (subscriber_id) LEFT JOIN cells c ON c.cell_id = main.cell_id
WHERE (on_scope >= $min_sessions AND on_other = 0
       AND s.subscriber_id NOT IN (SELECT subscriber_id FROM subscribers WHERE device_model IN (SELECT unnest($other_models))))
   OR s.subscriber_id NOT IN (SELECT subscriber_id FROM near)
ORDER BY subscriber_id
