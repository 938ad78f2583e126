-- KQIs per key x day x service from the sums of kqi_sums.sql ({sums}): each a ratio of two of them, NULL
-- where no session had the value.
SELECT
  {keys}, day, service,
  sessions,
  bytes_sum / 1E6 AS volume_mb,
  success_n / CAST(sessions AS DOUBLE) AS success_rate,
  throughput_kbps_sum / CAST(NULLIF(throughput_kbps_n, 0) AS DOUBLE) AS throughput_kbps_mean,
  rtt_ms_sum / CAST(NULLIF(rtt_ms_n, 0) AS DOUBLE) AS rtt_ms_mean,
  jitter_ms_sum / CAST(NULLIF(jitter_ms_n, 0) AS DOUBLE) AS jitter_ms_mean,
  page_load_ms_sum / CAST(NULLIF(page_load_ms_n, 0) AS DOUBLE) AS page_load_ms_mean,
  slow_page_n / CAST(NULLIF(page_load_ms_n, 0) AS DOUBLE) AS slow_page_share,
  initial_buffer_ms_sum / CAST(NULLIF(initial_buffer_ms_n, 0) AS DOUBLE) AS initial_buffer_ms_mean,
  stall_ms_sum / CAST(NULLIF(played_ms_sum, 0) AS DOUBLE) AS stall_ratio,
  stalled_n / CAST(NULLIF(stall_count_n, 0) AS DOUBLE) AS stall_session_share,
  video_bitrate_kbps_sum / CAST(NULLIF(video_bitrate_kbps_n, 0) AS DOUBLE) AS video_bitrate_kbps_mean,
  video_resolution_sum / CAST(NULLIF(video_resolution_n, 0) AS DOUBLE) AS video_resolution_mean,
  video_mos_sum / CAST(NULLIF(video_mos_n, 0) AS DOUBLE) AS video_mos_mean,
  call_setup_ms_sum / CAST(NULLIF(call_setup_ms_n, 0) AS DOUBLE) AS call_setup_ms_mean,
  dropped_n / CAST(NULLIF(call_dropped_n, 0) AS DOUBLE) AS call_drop_rate,
  voice_mos_sum / CAST(NULLIF(voice_mos_n, 0) AS DOUBLE) AS voice_mos_mean,
  voice_delay_ms_sum / CAST(NULLIF(voice_delay_ms_n, 0) AS DOUBLE) AS voice_delay_ms_mean,
  packet_loss_pct_sum / CAST(NULLIF(packet_loss_pct_n, 0) AS DOUBLE) AS packet_loss_pct_mean
FROM {sums}
