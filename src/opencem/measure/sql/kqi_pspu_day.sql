-- KQIs per subscriber per service per day (PSPU) from xDR sessions. The twin reuses this template
-- with other keys and periods ({keys}: grid; {period}: the hour).
-- The video MOS and the E-model layers are per-session QoE models from opencem.indicators.qoe,
-- inserted as SQL by opencem.measure.steps; the E-model's shared terms are computed once per layer.
WITH r AS (
  SELECT
    {keys}, service, {period} AS day, success, codec,
    volume_dl_bytes + volume_ul_bytes AS bytes,
    date_diff('millisecond', start_time, end_time) AS duration_ms,
    throughput_dl_kbps, rtt_ms, jitter_ms, page_load_ms, initial_buffer_ms, stall_count, stall_ms,
    video_bitrate_kbps, video_resolution_p, call_setup_ms, call_dropped, voice_delay_ms, packet_loss_pct,
    {video_mos} AS video_mos
  FROM {source}
), {emodel_ctes},
s AS (
  SELECT *, {voice_mos} AS voice_mos FROM {emodel_last}
)
SELECT
  {keys}, day, service,
  COUNT(*) AS sessions,
  SUM(bytes) / 1E6 AS volume_mb,
  AVG(CASE WHEN success THEN 1E0 ELSE 0E0 END) AS success_rate,
  AVG(throughput_dl_kbps) AS throughput_kbps_mean,
  AVG(rtt_ms) AS rtt_ms_mean,
  AVG(jitter_ms) AS jitter_ms_mean,
  AVG(page_load_ms) AS page_load_ms_mean,
  AVG(CASE WHEN page_load_ms > 5000 THEN 1E0 WHEN page_load_ms IS NOT NULL THEN 0E0 END) AS slow_page_share,
  AVG(initial_buffer_ms) AS initial_buffer_ms_mean,
  SUM(stall_ms) / NULLIF(SUM(CASE WHEN stall_ms IS NOT NULL THEN duration_ms - stall_ms END), 0) AS stall_ratio,
  AVG(CASE WHEN stall_count > 0 THEN 1E0 WHEN stall_count IS NOT NULL THEN 0E0 END) AS stall_session_share,
  AVG(video_bitrate_kbps) AS video_bitrate_kbps_mean,
  AVG(video_resolution_p * 1E0) AS video_resolution_mean,
  AVG(video_mos) AS video_mos_mean,
  AVG(call_setup_ms) AS call_setup_ms_mean,
  AVG(CASE WHEN call_dropped THEN 1E0 WHEN call_dropped IS NOT NULL THEN 0E0 END) AS call_drop_rate,
  AVG(voice_mos) AS voice_mos_mean,
  AVG(voice_delay_ms) AS voice_delay_ms_mean,
  AVG(packet_loss_pct) AS packet_loss_pct_mean
FROM s
GROUP BY {keys}, day, service
