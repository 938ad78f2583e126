-- The common table expressions of the KQIs per subscriber per service per day (PSPU) from xDR sessions,
-- ending with `sums`: per key, day and service, the sums and counts every KQI is a ratio of. Sums add up,
-- so a stream adds a micro-batch's sums to those it holds (opencem.stream.run) and takes the KQIs from
-- them with kqi_from_sums.sql, as measure does over all sessions. The twin reuses this template with
-- other keys and periods ({keys}: grid; {period}: the hour).
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
),
sums AS (
  SELECT
    {keys}, day, service,
    COUNT(*) AS sessions,
    SUM(bytes) AS bytes_sum,
    SUM(CASE WHEN success THEN 1 ELSE 0 END) AS success_n,
    SUM(throughput_dl_kbps) AS throughput_kbps_sum, COUNT(throughput_dl_kbps) AS throughput_kbps_n,
    SUM(rtt_ms) AS rtt_ms_sum, COUNT(rtt_ms) AS rtt_ms_n,
    SUM(jitter_ms) AS jitter_ms_sum, COUNT(jitter_ms) AS jitter_ms_n,
    SUM(page_load_ms) AS page_load_ms_sum, COUNT(page_load_ms) AS page_load_ms_n,
    SUM(CASE WHEN page_load_ms > 5000 THEN 1 ELSE 0 END) AS slow_page_n,
    SUM(initial_buffer_ms) AS initial_buffer_ms_sum, COUNT(initial_buffer_ms) AS initial_buffer_ms_n,
    SUM(stall_ms) AS stall_ms_sum,
    SUM(CASE WHEN stall_ms IS NOT NULL THEN duration_ms - stall_ms END) AS played_ms_sum,
    SUM(CASE WHEN stall_count > 0 THEN 1 ELSE 0 END) AS stalled_n, COUNT(stall_count) AS stall_count_n,
    SUM(video_bitrate_kbps) AS video_bitrate_kbps_sum, COUNT(video_bitrate_kbps) AS video_bitrate_kbps_n,
    SUM(video_resolution_p) AS video_resolution_sum, COUNT(video_resolution_p) AS video_resolution_n,
    SUM(video_mos) AS video_mos_sum, COUNT(video_mos) AS video_mos_n,
    SUM(call_setup_ms) AS call_setup_ms_sum, COUNT(call_setup_ms) AS call_setup_ms_n,
    SUM(CASE WHEN call_dropped THEN 1 ELSE 0 END) AS dropped_n, COUNT(call_dropped) AS call_dropped_n,
    SUM(voice_mos) AS voice_mos_sum, COUNT(voice_mos) AS voice_mos_n,
    SUM(voice_delay_ms) AS voice_delay_ms_sum, COUNT(voice_delay_ms) AS voice_delay_ms_n,
    SUM(packet_loss_pct) AS packet_loss_pct_sum, COUNT(packet_loss_pct) AS packet_loss_pct_n
  FROM s
  GROUP BY {keys}, day, service
)
