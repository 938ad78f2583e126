-- Subscribers who ported out in [$since, $as_of), with what a win-back offer needs.
SELECT p.subscriber_id, p.portout_date, p.recipient_operator, s.plan, s.arpu_monthly, s.home_area,
       COALESCE(s.consent_marketing, false) AS consent_marketing
FROM portouts p JOIN subscribers s USING (subscriber_id)
WHERE p.portout_date < $as_of AND p.portout_date >= $since
ORDER BY s.arpu_monthly DESC, p.subscriber_id
