-- Consents and profile of every subscriber (pseudonymous ids).
SELECT subscriber_id, consent_location, consent_preferences, plan, device_capability, device_vendor
FROM subscribers
