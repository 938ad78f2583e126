-- One subscriber's CEI per day over the days [$first, $last].
SELECT day, sessions_total, cei, cei_web, cei_video, cei_voice, cei_gaming, cei_social, cei_file_transfer
FROM cei_subscriber_day
WHERE subscriber_id = $subscriber AND day BETWEEN $first AND $last
ORDER BY day
