"""PM counters per cell and 15 minutes, consistent with the load and faults the sessions see."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .faults import SLOTS_PER_DAY
from .radio import NR_LAYER, mimo_layers, spectral_efficiency
from .sessions import Context

MOBILITY = {"core": 0.35, "suburb": 0.25, "highway": 1.6}  # handovers per RRC connection


def cell_quality(ctx: Context, rng: np.random.Generator, n: int = 40_000) -> tuple[np.ndarray, np.ndarray]:
    """Mean SINR and traffic share of each cell over random users at nominal load (a drive test)."""
    from .population import _points_in_city

    x, y = _points_in_city(n, rng, 0.5)
    s, sector, loss = ctx.radio.geometry(x, y)
    r = ctx.radio.serve(
        s, sector, loss, rng.uniform(0, 15, n), rng.random(n) < 0.6,
        lambda cells: np.full(cells.shape, 0.5), lambda cells: np.zeros(cells.shape),
        lambda layer: np.zeros(len(layer)), rng.normal(0, 6, (n, s.shape[1])), rng.random(n),
    )
    n_cells = ctx.city.n_cells
    count = np.bincount(r["cell"], minlength=n_cells)
    mean_sinr = np.bincount(r["cell"], r["sinr"], minlength=n_cells) / np.maximum(count, 1)
    mean_sinr = np.where(count > 0, mean_sinr, 8.0)
    share = (count + 2) / (count + 2).mean()
    c = ctx.city.cells
    for i in np.flatnonzero(c["on_air_day"] > 0):  # a carrier added later inherits its sector's radio picture
        twin = np.flatnonzero((c["site"] == c["site"][i]) & (c["sector"] == c["sector"][i]) & (c["band"] == "B3"))
        mean_sinr[i], share[i] = mean_sinr[twin[0]], share[twin[0]]
    return mean_sinr, share


def pm_day(ctx: Context, quality: tuple[np.ndarray, np.ndarray], day: int, start_date, rng) -> pa.Table:
    c = ctx.city.cells
    sch = ctx.schedule
    sinr0, share = quality
    live = np.flatnonzero(c["on_air_day"] <= day)
    sl = slice(day * SLOTS_PER_DAY, (day + 1) * SLOTS_PER_DAY)
    load = sch.load[live, sl].astype(float)  # (cells, 96)
    n_c, n_t = load.shape
    t_min = day * 1440 + np.arange(n_t) * 15
    sinr = np.repeat(sinr0[live, None], n_t, axis=1)
    thr_factor = np.ones_like(load)
    drop_extra = np.zeros_like(load)
    interf_db = np.zeros_like(load)
    off = np.zeros_like(load, dtype=bool)
    for f in sch.faults:
        act = (t_min + 15 > f.start_min) & (t_min < f.end_min)
        rows = np.isin(c["cell_id"][live], c["cell_id"][f.cells]) if len(f.cells) else np.zeros(n_c, bool)
        m = rows[:, None] & act[None, :]
        if f.cause == "coverage":
            off |= m
        elif f.cause == "interference":
            sinr = np.where(m, sinr - 11.0, sinr)
            interf_db = np.where(m, 14.0, interf_db)
            drop_extra = np.where(m, 0.012, drop_extra)
        elif f.cause == "transport":
            thr_factor = np.where(m, f.params["thr_factor"], thr_factor)
            drop_extra = np.where(m, 0.004, drop_extra)
    is_nr = (c["layer"][live] == NR_LAYER)[:, None]
    prbs = c["prbs"][live][:, None].astype(float)
    bw = c["bandwidth_mhz"][live][:, None]
    cap_kbps = spectral_efficiency(sinr, is_nr) * mimo_layers(sinr, is_nr) * bw * 1e3 * 0.75 * np.where(is_nr, 0.7, 1.0)
    conn_mean = (2 + 55 * load * prbs / 100 * share[live, None]) * rng.lognormal(0, 0.1, load.shape)
    conn_mean = np.where(off, 0.0, conn_mean)
    att = rng.poisson(conn_mean * 45)
    p_rrc = np.clip(0.997 - 0.04 * (load > 0.95) - 0.3 * (sinr < -3), 0.5, 1)
    succ = rng.binomial(att, p_rrc)
    drb_att = rng.binomial(succ, 0.93)
    drb_succ = rng.binomial(drb_att, np.clip(p_rrc + 0.002, 0, 1))
    session_time = conn_mean * 900 * np.clip(load + 0.1, 0, 1)
    drops = rng.binomial(drb_succ, np.clip(0.002 + drop_extra + 0.003 * (load > 0.9), 0, 1))
    ue_thp = cap_kbps * np.clip(1 - 0.92 * load, 0.03, 1) * thr_factor * rng.lognormal(0, 0.08, load.shape)
    used = np.where(off, 0.0, load * prbs)
    vol_dl = used / prbs * cap_kbps * 900 / 1000 * 0.6 * thr_factor
    ho_req = rng.poisson(att * np.array([MOBILITY[a] for a in c["area_type"][live]])[:, None])
    ho_succ = rng.binomial(ho_req, np.clip(0.988 - 0.06 * (interf_db > 0), 0, 1))
    delay = 2 + np.minimum(6 * load / np.maximum(1 - load, 0.02), 300)
    cqi = np.clip((sinr + 6) / 2.3, 1, 15)
    nan_if_off = lambda a: pa.array(np.where(off, np.nan, a).ravel(), from_pandas=True)  # noqa: E731
    period = start_date + (t_min * 60_000).astype("timedelta64[ms]")
    return pa.table({
        "cell_id": np.repeat(c["cell_id"][live], n_t),
        "period_start": np.tile(period, n_c),
        "granularity_s": np.full(n_c * n_t, 900, dtype=np.int32),
        "RRC.ConnEstabAtt": att.ravel().astype(np.int64), "RRC.ConnEstabSucc": succ.ravel().astype(np.int64),
        "RRC.ConnMean": np.round(conn_mean, 2).ravel(),
        "RRC.ConnMax": np.ceil(conn_mean * 1.6).ravel().astype(np.int64),
        "DRB.EstabAtt": drb_att.ravel().astype(np.int64), "DRB.EstabSucc": drb_succ.ravel().astype(np.int64),
        "DRB.RelActNbr": drops.ravel().astype(np.int64), "DRB.SessionTime": np.round(session_time, 1).ravel(),
        "DRB.UEThpDl": nan_if_off(np.round(ue_thp, 1)), "DRB.UEThpUl": nan_if_off(np.round(ue_thp / 8, 1)),
        "DRB.PdcpSduVolumeDl": np.round(vol_dl, 2).ravel(), "DRB.PdcpSduVolumeUl": np.round(vol_dl / 9, 2).ravel(),
        "DRB.RlcSduDelayDl": nan_if_off(np.round(delay, 2)),
        "RRU.PrbUsedDl": np.round(used, 2).ravel(), "RRU.PrbUsedUl": np.round(used * 0.55, 2).ravel(),
        "RRU.PrbAvailDl": np.repeat(prbs, n_t, axis=1).ravel(), "RRU.PrbAvailUl": np.repeat(prbs, n_t, axis=1).ravel(),
        "MM.HoExeIntraReq": ho_req.ravel().astype(np.int64), "MM.HoExeIntraSucc": ho_succ.ravel().astype(np.int64),
        "VS.UlInterfAvg": np.round(-117 + 5 * load + interf_db + rng.normal(0, 0.5, load.shape), 1).ravel(),
        "VS.CqiAvg": nan_if_off(np.round(cqi, 2)),
    })
