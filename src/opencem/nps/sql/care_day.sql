-- Care contacts by day, for the windowed care features.
SELECT *, CAST(contact_time AS DATE) AS day FROM care_contacts
