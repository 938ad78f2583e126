-- The scenario's CEI of every subscriber-day it replaced, in a stable order.
SELECT d.subscriber_id, d.day, c.cei FROM whatif_days d
LEFT JOIN whatif_cei_subscriber c ON c.subscriber_id = d.subscriber_id AND c.day = d.day
ORDER BY d.subscriber_id, d.day
