-- Cell-hours that PM (and, for round trips, the xDR) show faulty against the cell's peers or its own usual, by signal:
-- * 'cell_down' (cell_down: no PM, or no traffic in hours it usually carries some);
-- * 'ul_interference': UL interference at least $interference_db above the median cell of its band in that hour
--   (cell_hour_pm);
-- * 'chronic_prb_load': the hot hours ($hot_prb DL PRB utilisation or more) of a cell that is hot at that hour of
--   day on at least $chronic_share of the window's days of the same type (weekday / weekend), 3 at least. A sector
--   congested every busy hour is its own baseline, so the grid's own past cannot show it;
-- * 'prb_surge': a hot hour of a cell at least $surge_prb above its own median at that hour of day (a crowd
--   event, an outage's neighbour taking its users);
-- * 'chronic_rtt': the slow hours (cell_hour_rtt: median session RTT at least exp($slow_log_rtt) times the network's median cell in
--   that hour, the cell not hot) of a cell slow at that hour of day on $chronic_share of the days, 3 at least: a
--   degraded backhaul older than the window;
-- * 'link_rtt': every cell of a transport link, in an hour in which the link's sessions (outside hot periods) had a
--   mean ln RTT at least $link_log_rtt above the link's median at that hour of day, and that deviation times
--   sqrt(sessions) at least $z robust z over all link-hours: a backhaul that degrades for a few hours slows all
--   its sites at once, which the link sees better than any one grid.
-- * 'link_thp': every cell of a transport link, in an hour in which PM's mean DL per-user throughput fell on four
--   in five of the link's cells (ln throughput against each cell's median at that hour of day and day type, its
--   80th percentile over the link's cells at most -$link_log_rtt, at $z robust z over all link-hours) while their
--   PRB load was not above its usual by $link_prb: a backhaul that throttles all its sites at once, seen in the
--   counters also in hours that carry few sessions (a night, a business district at the weekend). Not one site's
--   cells alone: an interferer slows those too.
WITH h AS (SELECT *, hour(hour) AS hod, isodow(hour) >= 6 AS weekend, CAST(hour AS DATE) AS day, prb >= $hot_prb AS hot
           FROM cell_hour_pm),
usual AS (SELECT cell_id, hod, weekend, median(prb) AS prb FROM h GROUP BY ALL),
chronic AS (SELECT cell_id, hod, weekend FROM h GROUP BY ALL
            HAVING count(DISTINCT day) FILTER (WHERE hot) >= greatest(3, $chronic_share * count(DISTINCT day))),
slow AS (SELECT rt.cell_id, rt.hour, hour(rt.hour) AS hod, isodow(rt.hour) >= 6 AS weekend, CAST(rt.hour AS DATE) AS day,
                rt.log_rtt - median(rt.log_rtt) OVER (PARTITION BY rt.hour) >= $slow_log_rtt AND coalesce(rt.prb, 0) < $hot_prb AS slow
         FROM cell_hour_rtt rt),
chronic_slow AS (SELECT cell_id, hod, weekend FROM slow GROUP BY ALL
                 HAVING count(DISTINCT day) FILTER (WHERE slow) >= greatest(3, $chronic_share * count(DISTINCT day))),
link_hour AS (SELECT c.transport_link_id AS link, s.hour, sum(s.rtt_n) AS n, sum(s.rtt_sum) / sum(s.rtt_n) AS log_rtt
              FROM sess_cell_hour s JOIN cells c USING (cell_id)
              WHERE s.cool AND s.rtt_n > 0 AND c.transport_link_id IS NOT NULL GROUP BY ALL),
link_base AS (SELECT link, hour(hour) AS hod, isodow(hour) >= 6 AS weekend, median(log_rtt) AS base FROM link_hour GROUP BY ALL),
link_dev AS (SELECT l.link, l.hour, l.log_rtt - b.base AS d, (l.log_rtt - b.base) * sqrt(l.n) AS t FROM link_hour l
             JOIN link_base b ON b.link = l.link AND b.hod = hour(l.hour) AND b.weekend = (isodow(l.hour) >= 6)),
link_med AS (SELECT median(t) AS m FROM link_dev),  -- the empirical null over all link-hours, as the grid test's
link_null AS (SELECT any_value(m) AS m, greatest(1.4826 * median(abs(t - m)), 1E-9) AS mad FROM link_dev, link_med),
link_slow AS (SELECT link, hour FROM link_dev, link_null WHERE d >= $link_log_rtt AND (t - m) / mad >= $z),
cell_thp AS (SELECT c.transport_link_id AS link, h.hour,
                    h.log_thp - median(h.log_thp) OVER (PARTITION BY h.cell_id, h.hod, h.weekend) AS d, h.prb - u.prb AS d_prb
             FROM h JOIN usual u USING (cell_id, hod, weekend) JOIN cells c USING (cell_id)
             WHERE h.log_thp IS NOT NULL AND c.transport_link_id IS NOT NULL),
link_thp AS (SELECT link, hour, quantile_cont(d, 0.8) AS d, avg(d_prb) AS d_prb FROM cell_thp GROUP BY ALL),
thp_med AS (SELECT median(d) AS m FROM link_thp),
thp_null AS (SELECT any_value(m) AS m, greatest(1.4826 * median(abs(d - m)), 1E-9) AS mad FROM link_thp, thp_med),
link_throttled AS (SELECT link, hour FROM link_thp, thp_null WHERE d <= -$link_log_rtt AND (m - d) / mad >= $z AND d_prb < $link_prb)
SELECT DISTINCT cell_id, date_trunc('hour', period_start) AS hour, 'cell_down' AS signal FROM cell_down
UNION ALL
SELECT cell_id, hour, 'ul_interference' AS signal FROM cell_hour_pm WHERE ul_vs_band >= $interference_db
UNION ALL
SELECT h.cell_id, h.hour, 'chronic_prb_load' AS signal FROM h JOIN chronic USING (cell_id, hod, weekend) WHERE h.hot
UNION ALL
SELECT s.cell_id, s.hour, 'chronic_rtt' AS signal FROM slow s JOIN chronic_slow USING (cell_id, hod, weekend) WHERE s.slow
UNION ALL
SELECT c.cell_id, l.hour, 'link_rtt' AS signal FROM link_slow l JOIN cells c ON c.transport_link_id = l.link
UNION ALL
SELECT c.cell_id, l.hour, 'link_thp' AS signal FROM link_throttled l JOIN cells c ON c.transport_link_id = l.link
UNION ALL
SELECT h.cell_id, h.hour, 'prb_surge' AS signal FROM h JOIN usual u USING (cell_id, hod, weekend) WHERE h.hot AND h.prb - u.prb >= $surge_prb
