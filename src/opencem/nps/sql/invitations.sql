-- Survey invitations sent on $min_day or later: whether each was answered, and why the customer was asked.
SELECT invitation_id, subscriber_id, CAST(invite_time AS DATE) AS as_of, trigger, survey_id,
       survey_id IS NOT NULL AS answered
FROM survey_invitations WHERE CAST(invite_time AS DATE) >= $min_day
ORDER BY invite_time, invitation_id
