-- Cell x 15-minute KPIs from PM counters (TS 28.552 counter names).
-- Each KPI cites its definition; ratios are NULL when the denominator is zero.
-- A cell that has reported PM and then sends no row for a period it should have (any period the network
-- reported, on the cell's own granularity) gets a row with pm_reported = false and every KPI NULL: a real
-- OSS exports nothing for a cell that is down, which is outage evidence, not a cell with zero traffic.
WITH periods AS (SELECT DISTINCT period_start FROM pm),
first_seen AS (SELECT cell_id, min(period_start) AS first_period, max(granularity_s) AS granularity_s FROM pm GROUP BY cell_id),
expected AS (
  SELECT f.cell_id, p.period_start FROM first_seen f JOIN periods p ON p.period_start >= f.first_period
  WHERE (epoch(p.period_start) - epoch(f.first_period)) % f.granularity_s = 0)
SELECT
  e.cell_id,
  e.period_start,
  CAST(e.period_start AS DATE) AS day,
  pm.cell_id IS NOT NULL AS pm_reported,
  -- Accessibility: RRC setup success rate (TS 32.450 §6.1.1 / TS 28.554 §6.1 "DRB accessibility" inputs)
  "RRC.ConnEstabSucc" * 1E0 / NULLIF("RRC.ConnEstabAtt", 0) AS rrc_setup_sr,
  -- Accessibility: DRB (E-RAB) setup success rate (TS 32.450 §6.1.1 E-RAB accessibility)
  "DRB.EstabSucc" * 1E0 / NULLIF("DRB.EstabAtt", 0) AS drb_setup_sr,
  -- Accessibility as the product of both (TS 32.450 §6.1.1: RRC SR x E-RAB SR)
  ("RRC.ConnEstabSucc" * 1E0 / NULLIF("RRC.ConnEstabAtt", 0)) * ("DRB.EstabSucc" * 1E0 / NULLIF("DRB.EstabAtt", 0)) AS accessibility,
  -- Retainability: abnormal DRB releases per hour of active session time (TS 28.554 §6.2.1 / TS 32.450 §6.2.1)
  "DRB.RelActNbr" * 3600E0 / NULLIF("DRB.SessionTime", 0) AS drb_abnormal_rel_per_hour,
  -- Retainability as operators report it: abnormal releases per successful setup (drop rate)
  "DRB.RelActNbr" * 1E0 / NULLIF("DRB.EstabSucc", 0) AS drb_drop_rate,
  -- Integrity: mean DL / UL UE throughput (TS 28.554 §6.3.1, from DRB.UEThpDl/Ul)
  "DRB.UEThpDl" / 1E3 AS ue_thp_dl_mbps,
  "DRB.UEThpUl" / 1E3 AS ue_thp_ul_mbps,
  -- Integrity: DL air-interface delay (TS 28.554 §6.3.3, from DRB.RlcSduDelayDl)
  "DRB.RlcSduDelayDl" AS dl_delay_ms,
  -- Utilisation: mean DL / UL PRB utilisation (TS 28.554 §6.5.x, RRU.PrbUsed / RRU.PrbAvail)
  "RRU.PrbUsedDl" / NULLIF("RRU.PrbAvailDl", 0) AS prb_util_dl,
  "RRU.PrbUsedUl" / NULLIF("RRU.PrbAvailUl", 0) AS prb_util_ul,
  -- Mobility: intra-system handover execution success rate (TS 28.554 §6.4.1)
  "MM.HoExeIntraSucc" * 1E0 / NULLIF("MM.HoExeIntraReq", 0) AS ho_sr,
  -- Traffic: volumes (MB) and mean / max RRC-connected users
  "DRB.PdcpSduVolumeDl" / 8E0 AS volume_dl_mb,
  "DRB.PdcpSduVolumeUl" / 8E0 AS volume_ul_mb,
  "RRC.ConnMean" AS rrc_users_mean,
  "RRC.ConnMax" AS rrc_users_max,
  -- Radio quality (vendor-specific counters): UL interference + noise and mean CQI
  "VS.UlInterfAvg" AS ul_interference_dbm,
  "VS.CqiAvg" AS cqi_mean
FROM expected e LEFT JOIN pm ON pm.cell_id = e.cell_id AND pm.period_start = e.period_start
