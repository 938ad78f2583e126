-- Per episode the condition changes inside it against the same grids at the same hours of day outside it
-- (radio, PM load and interference, RTT, failures), the serving cells that went silent, the transport link
-- whose cells' RTT rose most and the hot / interfered / serving cells, and the area's usual cells that were down
-- during the episode as their PM shows it, and the serving cells' UL interference above their band's (peers, so
-- an interferer older than the window shows too), and the cells whose PM placed its grid-hours. An episode PM
-- placed in hours without a session (a backhaul throttled at night) has a row too, with those cells alone.
-- Reads sess_cell_hour, mr, cells, cell_down, cell_hour_pm, cell_events and ep_units.
WITH eg AS (SELECT DISTINCT episode_id, grid FROM ep_units),
net AS (SELECT hour(hour) AS hod, sum(rtt_sum) / sum(n) AS log_rtt FROM sess_cell_hour GROUP BY ALL),
eh AS (SELECT DISTINCT episode_id, hour(hour) AS hod FROM ep_units),
m AS (
  SELECT eg.episode_id, r.rsrp_dbm, r.sinr_db, (u.grid IS NOT NULL) AS inside
  FROM eg JOIN mr r ON r.grid = eg.grid
  JOIN eh ON eh.episode_id = eg.episode_id AND eh.hod = hour(r.hour)
  LEFT JOIN ep_units u ON u.episode_id = eg.episode_id AND u.grid = r.grid AND u.hour = r.hour),
ecg AS (  -- the sessions in the episode's grids at its hours of day, inside the episode or not, summed per serving cell
           -- and load (from the days' sess_cell_hour sums; a session without an RTT counts as ln 1 = 0, as always)
  SELECT eg.episode_id, x.cell_id, (u.grid IS NOT NULL) AS inside, x.cool, any_value(cs.site_id) AS site_id, sum(x.n) AS n,
    sum(x.prb_sum) AS prb_sum, sum(x.prb_n) AS prb_n, sum(x.ul_sum) AS ul_sum, sum(x.ul_n) AS ul_n,
    sum(ph.ul_vs_band * x.n) AS vsb_sum, sum(CASE WHEN ph.ul_vs_band IS NOT NULL THEN x.n ELSE 0 END) AS vsb_n,
    sum(CASE WHEN ph.ul_vs_band >= $interference_db THEN x.n ELSE 0 END) AS interfered,
    sum(x.rtt_sum) AS rtt_sum, sum(x.rtt_sum - x.n * net.log_rtt) AS rtt_vs_net_sum,
    sum(x.thp_sum) AS thp_sum, sum(x.fail) AS fail, sum(x.poor) AS poor,
    sum(CASE WHEN x.cool THEN 0 ELSE x.n END) AS hot,
    -- where the poor sessions are: a hot cell that carries a sixth of the area's sessions but most of its poor ones
    sum(CASE WHEN x.cool THEN 0 ELSE x.poor END) AS hot_poor
  FROM eg JOIN sess_cell_hour x ON x.grid = eg.grid JOIN net ON net.hod = hour(x.hour)
  JOIN eh ON eh.episode_id = eg.episode_id AND eh.hod = hour(x.hour)
  LEFT JOIN cells cs ON cs.cell_id = x.cell_id  -- the site comes from the cells table, never from the cell id
  LEFT JOIN cell_hour_pm ph ON ph.cell_id = x.cell_id AND ph.hour = x.hour
  LEFT JOIN ep_units u ON u.episode_id = eg.episode_id AND u.grid = x.grid AND u.hour = x.hour
  GROUP BY eg.episode_id, x.cell_id, inside, x.cool),
ec AS (  -- per episode and serving cell, the sums and counts every average below is made of
  SELECT episode_id, cell_id, any_value(site_id) AS site_id,
    coalesce(sum(n) FILTER (WHERE inside), 0) AS n_in, coalesce(sum(n) FILTER (WHERE NOT inside), 0) AS n_out,
    sum(prb_sum) FILTER (WHERE inside) AS prb_in_sum, sum(prb_n) FILTER (WHERE inside) AS prb_in_n,
    sum(prb_sum) FILTER (WHERE NOT inside) AS prb_out_sum, sum(prb_n) FILTER (WHERE NOT inside) AS prb_out_n,
    sum(ul_sum) FILTER (WHERE inside) AS ul_in_sum, sum(ul_n) FILTER (WHERE inside) AS ul_in_n,
    sum(ul_sum) FILTER (WHERE NOT inside) AS ul_out_sum, sum(ul_n) FILTER (WHERE NOT inside) AS ul_out_n,
    sum(vsb_sum) FILTER (WHERE inside) AS vsb_in_sum, sum(vsb_n) FILTER (WHERE inside) AS vsb_in_n,
    sum(interfered) FILTER (WHERE inside) AS interfered_in,
    -- round trip outside hot periods (see cell_share)
    sum(rtt_sum) FILTER (WHERE inside AND cool) AS rtt_in_sum, sum(n) FILTER (WHERE inside AND cool) AS rtt_in_n,
    sum(rtt_sum) FILTER (WHERE NOT inside AND cool) AS rtt_out_sum, sum(n) FILTER (WHERE NOT inside AND cool) AS rtt_out_n,
    sum(rtt_vs_net_sum) FILTER (WHERE inside AND cool) AS rtt_vs_net_in_sum,
    sum(thp_sum) FILTER (WHERE inside) AS thp_in_sum, sum(thp_sum) FILTER (WHERE NOT inside) AS thp_out_sum,
    sum(fail) FILTER (WHERE inside) AS fail_in, sum(fail) FILTER (WHERE NOT inside) AS fail_out,
    sum(poor) FILTER (WHERE inside) AS poor_in, sum(poor) FILTER (WHERE NOT inside) AS poor_out,
    sum(hot) FILTER (WHERE inside) AS hot_in, sum(hot_poor) FILTER (WHERE inside) AS hot_poor_in
  FROM ecg GROUP BY episode_id, cell_id),
sx AS (  -- the episode's sessions inside against outside, over all its cells
  SELECT episode_id,
    sum(prb_in_sum) / nullif(sum(prb_in_n), 0) - sum(prb_out_sum) / nullif(sum(prb_out_n), 0) AS d_prb,
    sum(prb_in_sum) / nullif(sum(prb_in_n), 0) AS prb_in,
    sum(ul_in_sum) / nullif(sum(ul_in_n), 0) - sum(ul_out_sum) / nullif(sum(ul_out_n), 0) AS d_ul_interf,
    sum(vsb_in_sum) / nullif(sum(vsb_in_n), 0) AS ul_vs_band_in,
    sum(interfered_in) / nullif(sum(n_in), 0) AS interfered_share_in,
    sum(rtt_in_sum) / nullif(sum(rtt_in_n), 0) - sum(rtt_out_sum) / nullif(sum(rtt_out_n), 0) AS d_log_rtt,
    sum(thp_in_sum) / nullif(sum(n_in), 0) - sum(thp_out_sum) / nullif(sum(n_out), 0) AS d_log_thp,
    sum(fail_in) / nullif(sum(n_in), 0) - sum(fail_out) / nullif(sum(n_out), 0) AS d_fail,
    sum(poor_in) / nullif(sum(n_in), 0) - sum(poor_out) / nullif(sum(n_out), 0) AS d_poor,
    sum(hot_in) / nullif(sum(n_in), 0) AS hot_share_in,
    sum(hot_poor_in) / nullif(sum(poor_in), 0) AS hot_poor_share_in,
    count(DISTINCT CASE WHEN n_in > 0 THEN site_id END) AS sites_in,
    sum(n_in) AS sessions
  FROM ec GROUP BY episode_id),
mx AS (
  SELECT episode_id, avg(rsrp_dbm) FILTER (WHERE inside) - avg(rsrp_dbm) FILTER (WHERE NOT inside) AS d_rsrp,
         avg(sinr_db) FILTER (WHERE inside) - avg(sinr_db) FILTER (WHERE NOT inside) AS d_sinr
  FROM m GROUP BY episode_id),
cell_share AS (  -- each serving cell's share of sessions outside and inside the episode
  SELECT episode_id, cell_id,
    n_out * 1E0 / sum(n_out) OVER (PARTITION BY episode_id) AS share_out,
    n_in,
    -- round trip on the cell's sessions outside its hot periods: a queue on a loaded cell is congestion, a
    -- backhaul fault slows every load level
    rtt_in_sum / nullif(rtt_in_n, 0) - rtt_out_sum / nullif(rtt_out_n, 0) AS d_log_rtt,
    rtt_vs_net_in_sum / nullif(rtt_in_n, 0) AS log_rtt_vs_net,
    prb_in_sum / nullif(prb_in_n, 0) AS prb_in,
    ul_in_sum / nullif(ul_in_n, 0) - ul_out_sum / nullif(ul_out_n, 0) AS d_ul,
    vsb_in_sum / nullif(vsb_in_n, 0) AS ul_vs_band
  FROM ec),
silent AS (
  SELECT episode_id, sum(share_out) AS silent_share, list(cell_id ORDER BY share_out DESC, cell_id) AS silent_cells
  FROM cell_share WHERE n_in = 0 AND share_out >= 0.02 GROUP BY episode_id),
ep_hours AS (SELECT DISTINCT episode_id, hour FROM ep_units),
pm_down AS (  -- the area's usual cells that were down inside the episode, as their PM shows it (cell_down)
  SELECT episode_id, sum(share_out) AS pm_down_share, list(cell_id ORDER BY share_out DESC, cell_id) AS pm_down_cells,
         bool_or(no_pm) AS pm_missing
  FROM (SELECT cs.episode_id, cs.cell_id, any_value(cs.share_out) AS share_out, bool_or(d.reason = 'no_pm') AS no_pm
        FROM cell_share cs
        JOIN cell_down d ON d.cell_id = cs.cell_id
        JOIN ep_hours h ON h.episode_id = cs.episode_id AND h.hour = date_trunc('hour', d.period_start)
        WHERE cs.share_out >= 0.02 GROUP BY cs.episode_id, cs.cell_id)
  GROUP BY episode_id),
link AS (  -- the transport link whose cells' RTT rose most, weighed by its cells' share of the episode's sessions:
            -- a degraded link at the edge of a city-wide failure does not explain the failure
  SELECT episode_id, arg_max(transport_link_id, greatest(d, d_net) * least(1, share_in / $link_full_share)) AS link,
         arg_max(d, greatest(d, d_net) * least(1, share_in / $link_full_share)) AS link_d_log_rtt,
         arg_max(d_net, greatest(d, d_net) * least(1, share_in / $link_full_share)) AS link_log_rtt_vs_net,
         arg_max(share_in, greatest(d, d_net) * least(1, share_in / $link_full_share)) AS link_share_in,
         arg_max(cells, greatest(d, d_net) * least(1, share_in / $link_full_share)) AS link_cells
  FROM (SELECT cs.episode_id, c.transport_link_id, sum(cs.d_log_rtt * cs.n_in) / sum(cs.n_in) AS d,
               sum(cs.log_rtt_vs_net * cs.n_in) / sum(cs.n_in) AS d_net,
               sum(cs.n_in) * 1E0 / any_value(t.n_in) AS share_in, list(cs.cell_id ORDER BY cs.cell_id) AS cells
        FROM cell_share cs JOIN cells c USING (cell_id)
        JOIN (SELECT episode_id, sum(n_in) AS n_in FROM cell_share GROUP BY episode_id) t USING (episode_id)
        WHERE cs.n_in >= 5 GROUP BY ALL)
  GROUP BY episode_id),
signals AS (  -- the share of the episode's grid-hours that PM placed there, by signal (cell_events)
  SELECT episode_id, avg(CASE WHEN signal IN ('chronic_prb_load', 'prb_surge') THEN 1E0 ELSE 0E0 END) AS hot_units_share,
         avg(CASE WHEN signal = 'ul_interference' THEN 1E0 ELSE 0E0 END) AS interfered_units_share,
         avg(CASE WHEN signal IN ('chronic_rtt', 'link_thp') THEN 1E0 ELSE 0E0 END) AS slow_units_share,
         avg(CASE WHEN signal = 'cell_down' THEN 1E0 ELSE 0E0 END) AS down_units_share
  FROM ep_units GROUP BY episode_id),
pm AS (  -- the cells of the site that placed each PM grid-hour (pm_units) with that signal in that hour; one signal
         -- per episode, since each signal's grid-hours are clustered apart
  SELECT u.episode_id, list(DISTINCT e.cell_id) AS pm_cells, min(u.signal) AS pm_signal,
         min(c.transport_link_id) FILTER (WHERE e.signal IN ('link_rtt', 'link_thp')) AS pm_link
  FROM ep_units u JOIN cells c ON c.site_id = u.site_id JOIN cell_events e ON e.cell_id = c.cell_id AND e.hour = u.hour AND e.signal = u.signal
  GROUP BY u.episode_id),
hot AS (
  SELECT episode_id, list(cell_id ORDER BY prb_in DESC, cell_id) FILTER (WHERE prb_in >= 0.8) AS hot_cells,
         list(cell_id ORDER BY greatest(d_ul, ul_vs_band) DESC, cell_id) FILTER (WHERE d_ul >= 3 OR ul_vs_band >= $interference_db)
           AS interfered_cells,
         list(cell_id ORDER BY n_in DESC, cell_id) AS serving_cells
  FROM cell_share WHERE n_in > 0 GROUP BY episode_id)
SELECT signals.episode_id, sx.* EXCLUDE (episode_id), mx.d_rsrp, mx.d_sinr, coalesce(silent.silent_share, 0) AS silent_share, silent.silent_cells,
       coalesce(pm_down.pm_down_share, 0) AS pm_down_share, pm_down.pm_down_cells, pm_down.pm_missing,
       signals.hot_units_share, signals.interfered_units_share, signals.slow_units_share, signals.down_units_share,
       link.link, link.link_d_log_rtt, link.link_log_rtt_vs_net, link.link_share_in, link.link_cells, hot.hot_cells, hot.interfered_cells, hot.serving_cells,
       list_sort(pm.pm_cells) AS pm_cells, pm.pm_signal, pm.pm_link
FROM signals LEFT JOIN sx USING (episode_id) LEFT JOIN mx USING (episode_id) LEFT JOIN silent USING (episode_id) LEFT JOIN pm_down USING (episode_id)
LEFT JOIN link USING (episode_id) LEFT JOIN hot USING (episode_id) LEFT JOIN pm USING (episode_id)
ORDER BY episode_id
