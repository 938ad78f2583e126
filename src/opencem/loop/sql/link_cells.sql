-- Every cell carried by the transport links of $cells: a backhaul repair reaches all of them.
SELECT cell_id FROM cells
WHERE transport_link_id IN (SELECT transport_link_id FROM cells WHERE cell_id IN (SELECT unnest($cells)))
ORDER BY cell_id
