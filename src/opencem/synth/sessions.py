"""One day of sessions for a chunk of subscribers: where they are, which cell serves them, and
what each service's quality turns out to be. Everything is column arrays; no loop over sessions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit as _sigmoid  # logistic, overflow-safe

from .city import LAYERS, City
from .faults import MIN_PER_DAY, Schedule
from .population import DEVICES
from .radio import K_NEAREST, NR_LAYER, SHADOW_SIGMA_DB, RadioModel, radio_rtt_ms, user_throughput_kbps

WEB, VIDEO, VOICE, GAMING, SOCIAL, FILE = range(6)
# hour-of-day profile of session starts per service
_H = np.arange(24)
HOURLY = np.vstack([
    np.interp(_H, [0, 5, 8, 12, 18, 21, 23], [.3, .05, .8, 1, .9, 1, .6]),  # web
    np.interp(_H, [0, 5, 8, 12, 18, 21, 23], [.4, .03, .3, .6, .8, 1, .8]),  # video
    np.interp(_H, [0, 6, 9, 12, 17, 20, 23], [.05, .02, .9, 1, 1, .6, .15]),  # voice
    np.interp(_H, [0, 5, 9, 16, 20, 22, 23], [.5, .02, .1, .5, 1, 1, .8]),  # gaming
    np.interp(_H, [0, 5, 8, 12, 18, 21, 23], [.4, .05, .9, 1, .9, 1, .7]),  # social
    np.interp(_H, [0, 5, 9, 12, 18, 21, 23], [.3, .1, .6, .8, .8, 1, .6]),  # file transfer
])
HOURLY = HOURLY / HOURLY.sum(axis=1, keepdims=True)
VIDEO_LADDER_KBPS = np.array([235, 375, 560, 750, 1050, 1750, 2350, 3000, 4300, 5800])
VIDEO_LADDER_P = np.array([240, 240, 360, 360, 480, 720, 720, 1080, 1080, 1080])
DEVICE_CAP_KBPS = np.array([600e3 if d[2] == "5G" else (300e3 if d[3] >= 2020 else 150e3) for d in DEVICES])
DEVICE_MODELS = np.array([d[0] for d in DEVICES])
HOME, WORK, COMMUTE, LEISURE = range(4)


@dataclass
class Context:
    """Everything a chunk worker needs, built once by the generator."""

    city: City
    radio: RadioModel
    schedule: Schedule
    days: int




def draw_sessions(ctx: Context, sub: dict, idx: np.ndarray, day: int, home_geo, work_geo, rng) -> dict:
    """Which sessions happen (service, start, place) and the random draws their physics uses."""
    weekend = bool(ctx.schedule.weekend[day])
    day_factor = np.array([0.9, 1.2, 0.75, 1.3, 1.1, 0.8]) if weekend else np.ones(6)
    counts = rng.poisson(sub["rate"][idx] * day_factor)  # (n_subs, services)
    n = int(counts.sum())
    local = np.repeat(np.repeat(np.arange(len(idx)), 6), counts.ravel())
    service = np.tile(np.arange(6), len(idx)).repeat(counts.ravel())
    s = idx[local]  # global subscriber index

    # start time: hour from the service's daily profile, uniform within the hour
    cdf = np.cumsum(HOURLY, axis=1)
    hour = (rng.random(n)[:, None] > cdf[service]).sum(axis=1)
    start = day * MIN_PER_DAY + hour * 60 + rng.random(n) * 60

    # where the subscriber is at that hour
    u = rng.random(n)
    works = sub["has_work"][s] & (not weekend)
    kind = np.full(n, HOME)
    commute_h = ((hour >= 7) & (hour < 9)) | ((hour >= 17) & (hour < 19))
    kind = np.where(works & commute_h & (u < 0.55), COMMUTE, kind)
    kind = np.where(works & (hour >= 9) & (hour < 17), np.where(u < 0.9, WORK, LEISURE), kind)
    kind = np.where(works & (hour >= 17) & (hour < 19) & (u >= 0.55) & (u < 0.8), WORK, kind)
    free = ~works & (hour >= 9) & (hour < 23)
    kind = np.where(free & (u < 0.3), LEISURE, kind)
    kind = np.where(works & (hour >= 19) & (hour < 23) & (u < 0.15), LEISURE, kind)

    x = np.where(kind == WORK, sub["work_x"][s], sub["home_x"][s])
    y = np.where(kind == WORK, sub["work_y"][s], sub["home_y"][s])
    f = rng.random(n)
    cx = sub["home_x"][s] + f * (sub["work_x"][s] - sub["home_x"][s])
    cy = sub["home_y"][s] + f * (sub["work_y"][s] - sub["home_y"][s])
    x = np.where(kind == COMMUTE, cx, np.where(kind == LEISURE, sub["leisure_x"][s], x))
    y = np.where(kind == COMMUTE, cy, np.where(kind == LEISURE, sub["leisure_y"][s], y))
    spread = np.choose(kind, [25.0, 25.0, 60.0, 120.0])
    x = x + rng.normal(0, 1, n) * spread
    y = y + rng.normal(0, 1, n) * spread
    extra_loss = np.choose(kind, [sub["indoor_home_db"][s], sub["indoor_work_db"][s],
                                  np.full(n, 5.0), rng.uniform(0, 15, n)])

    # geometry: home and work were computed once per subscriber; other places per session
    site = np.empty((n, K_NEAREST), dtype=np.int64)
    sector = np.empty((n, K_NEAREST), dtype=np.int64)
    base_loss = np.empty((n, K_NEAREST))
    for k, geo in ((HOME, home_geo), (WORK, work_geo)):
        m = kind == k
        site[m], sector[m], base_loss[m] = geo[0][local[m]], geo[1][local[m]], geo[2][local[m]]
    m = (kind == COMMUTE) | (kind == LEISURE)
    if m.any():
        site[m], sector[m], base_loss[m] = ctx.radio.geometry(x[m], y[m])

    return {
        "sub": s, "service": service, "start": start, "kind": kind, "x": x, "y": y,
        "site": site, "sector": sector, "base_loss": base_loss, "extra_loss": extra_loss,
        # random draws, fixed per session whatever the world
        "shadow": rng.normal(0, SHADOW_SIGMA_DB, (n, K_NEAREST)), "u_b7": rng.random(n),
        "fading": rng.lognormal(0, 0.35, n), "rtt_jit": rng.lognormal(0, 0.15, n),
        "internet_ms": rng.lognormal(np.log(14), 0.45, n), "u1": rng.random(n), "u2": rng.random(n),
        "u3": rng.random(n), "z1": rng.lognormal(0, 0.4, n),
        "size": rng.lognormal(0, 1, n),  # unit log-normal, scaled per service
        "duration_z": rng.lognormal(0, 0.8, n), "stall_z": rng.random(n),
    }


def physics(ctx: Context, sub: dict, d: dict, fixes_off: frozenset[str] = frozenset()) -> dict:
    """Radio and service quality of the drawn sessions in a world where `fixes_off` were not done."""
    sch, city = ctx.schedule, ctx.city
    n = len(d["sub"])
    t = d["start"]
    slot = (t // 15).astype(np.int64)
    end_of = {f.fault_id: f.end_min for f in sch.faults}
    load_m = sch.load
    disabled: set[int] = set()
    for fx in sch.fixes:
        if fx.fix_id not in fixes_off:
            continue
        if fx.fault_id:
            end_of[fx.fault_id] = fx.unfixed_end_min
        if fx.fix_id in sch.load_without_fix:
            load_m = sch.load_without_fix[fx.fix_id]
        if fx.action == "add_carrier":
            disabled.add(fx.new_cell)

    def active(f):
        return (t >= f.start_min) & (t < end_of[f.fault_id])

    coverage = [(f, active(f)) for f in sch.by_cause("coverage")]
    on_air_day = city.cells["on_air_day"]

    def atten(cells):
        a = np.zeros(cells.shape)
        for f, act in coverage:
            a = a + np.where(act[:, None, None] & np.isin(cells, f.cells), f.params["atten_db"], 0.0)
        not_yet = on_air_day[cells] * MIN_PER_DAY > t[:, None, None]
        gone = np.isin(cells, list(disabled)) if disabled else False
        return a + np.where(not_yet | gone, 300.0, 0.0)

    def load_of(cells):
        return load_m[cells, slot.reshape((-1,) + (1,) * (cells.ndim - 1))]

    interf = [(f, active(f)) for f in sch.by_cause("interference")]
    layer_band = np.array(list(LAYERS))

    def ext_interf(layer):
        mw = np.zeros(n)
        for f, act in interf:
            dist = np.hypot(d["x"] - f.center_xy[0], d["y"] - f.center_xy[1])
            level = f.params["level_dbm"] - 30 * np.log10(np.maximum(dist, 150) / 150)
            mw += np.where(act & (layer_band[layer] == f.params["band"]), 10 ** (level / 10), 0.0)
        return mw

    use_nr = sub["is_5g"][d["sub"]]
    r = ctx.radio.serve(d["site"], d["sector"], d["base_loss"], d["extra_loss"], use_nr,
                        load_of, atten, ext_interf, d["shadow"], d["u_b7"])
    cell, layer = r["cell"], r["layer"]
    is_nr = layer == NR_LAYER
    srv = d["service"]
    dev = sub["device_idx"][d["sub"]]

    thr = user_throughput_kbps(r["sinr"], is_nr, city.cells["bandwidth_mhz"][cell], r["load"], d["fading"])
    thr = np.minimum(thr, DEVICE_CAP_KBPS[dev])
    rtt = radio_rtt_ms(r["sinr"], is_nr, r["load"], d["rtt_jit"])
    rtt += np.where(city.cells["transport_type"][cell] == "microwave", 4.0, 1.5) + 2.0 + d["internet_ms"]
    loss = 0.1 + 6 * _sigmoid((-4 - r["sinr"]) / 1.5)
    jitter_extra = np.zeros(n)
    dns_fail = np.zeros(n, dtype=bool)
    ims_fail = np.zeros(n, dtype=bool)
    drop_extra = np.zeros(n)
    for f in sch.faults:
        act = active(f)
        if f.cause == "transport":
            m = act & np.isin(cell, f.cells)
            rtt = np.where(m, rtt + f.params["extra_rtt_ms"] * d["z1"], rtt)
            jitter_extra = np.where(m, 25.0 * d["z1"], jitter_extra)
            loss = np.where(m, loss + f.params["loss_pct"], loss)
            thr = np.where(m, thr * f.params["thr_factor"], thr)
            drop_extra = np.where(m, drop_extra + 0.01, drop_extra)
        elif f.cause == "core_dns":
            m = act & np.isin(cell, f.cells)
            dns_fail |= m & (d["u3"] < f.params["fail_prob"])
            ims_fail |= m & (d["u3"] < f.params["fail_prob"] * 0.5)
        elif f.cause == "device":
            dev_model = DEVICE_MODELS[dev] == f.params["model"]
            m = act & dev_model
            drop_extra = np.where(m, drop_extra + f.params["drop_prob"], drop_extra)
            thr = np.where(m & is_nr, thr * f.params["nr_thr_factor"], thr)
            rtt = np.where(m, rtt + 12.0, rtt)
    radio_fail = (r["sinr"] < -7) & (d["u2"] < 0.5)

    nan = np.full(n, np.nan)
    out = {
        "cell": cell, "rat_nr": is_nr, "rsrp": r["rsrp"], "rsrq": r["rsrq"], "sinr": r["sinr"],
        "load": r["load"], "throughput": thr.copy(), "rtt": rtt, "success": np.ones(n, dtype=bool),
        "page_load": nan.copy(), "init_buf": nan.copy(), "stall_count": np.zeros(n), "stall_ms": nan.copy(),
        "bitrate": nan.copy(), "resolution": np.zeros(n), "setup_ms": nan.copy(), "dropped": np.zeros(n, dtype=bool),
        "delay": nan.copy(), "jitter": nan.copy(), "loss": nan.copy(),
    }
    # durations and volumes: sizes are service-specific scalings of one log-normal draw
    dur = np.choose(srv, [45.0, 300.0, 100.0, 900.0, 120.0, 1.0]) * d["duration_z"]
    size_mb = np.choose(srv, [2.2, 0.0, 0.0, 0.0, 3.0, 40.0]) * d["size"] ** np.where(srv == WEB, 0.6, 1.0)

    w = srv == WEB
    eff = thr * 0.6  # short transfers never leave TCP slow start
    # ms: client processing grows with the page, plus object round trips, plus transfer
    plt = 200 + 200 * size_mb + 10 * rtt + size_mb * 8e6 / np.maximum(eff, 1.0)
    out["page_load"] = np.where(w, plt, nan)
    out["throughput"] = np.where(w, eff, out["throughput"])
    out["success"] &= ~(w & (dns_fail | radio_fail | (plt > 30_000)))

    v = srv == VIDEO
    rung = np.clip(np.searchsorted(VIDEO_LADDER_KBPS, 0.7 * thr, side="right") - 1, 0, len(VIDEO_LADDER_KBPS) - 1)
    bitrate = VIDEO_LADDER_KBPS[rung] * (0.9 + 0.1 * d["u1"])
    dur_v = np.minimum(dur, 3 * 3600)
    stall_rate = 0.01 + 2.0 * _sigmoid((700 - thr) / 200) + 0.6 * (r["load"] > 0.9)  # per minute
    stalls = np.where(v, np.floor(-np.log1p(-d["stall_z"] * 0.999) * stall_rate * dur_v / 60 * 0.7), 0)
    out["bitrate"] = np.where(v, bitrate, nan)
    out["resolution"] = np.where(v, VIDEO_LADDER_P[rung], 0)
    out["init_buf"] = np.where(v, 200 + 6 * rtt + 2 * VIDEO_LADDER_KBPS[rung] * 1000 / np.maximum(thr, 1), nan)
    out["stall_count"] = stalls
    out["stall_ms"] = np.where(v, stalls * 2500 * d["z1"], nan)
    out["success"] &= ~(v & (dns_fail | radio_fail | (thr < 100)))

    c = srv == VOICE
    setup_fail = (0.004 + 0.35 * _sigmoid((-120 - r["rsrp"]) / 2) + 0.05 * (r["load"] > 0.95)) > d["u1"]
    setup_fail |= ims_fail
    p_drop = 0.003 + 0.3 * _sigmoid((-5 - r["sinr"]) / 1.5) + drop_extra
    # VoLTE bearers are prioritised (QCI 1), so they skip most of the data queue
    voice_rtt = np.maximum(rtt - np.minimum(6.0 * r["load"] / np.maximum(1 - r["load"], 0.02), 300.0) * 0.8, 10.0)
    out["success"] &= ~(c & setup_fail)
    out["setup_ms"] = np.where(c, 1200 + 400 * d["z1"] + 5 * voice_rtt, nan)
    out["dropped"] = c & ~setup_fail & (d["u2"] < p_drop)
    out["delay"] = np.where(c, 70 + 0.5 * voice_rtt, nan)
    out["jitter"] = np.where(c, 3 + 0.05 * voice_rtt * d["z1"] + jitter_extra, nan)
    out["loss"] = np.where(c, np.minimum(loss, 100.0), nan)

    g = srv == GAMING
    out["jitter"] = np.where(g, 2 + 0.12 * np.maximum(rtt - 15, 0) * d["z1"] + jitter_extra, out["jitter"])
    out["success"] &= ~(g & ((rtt > 1000) | (dns_fail & (d["u1"] < 0.5))))

    so = srv == SOCIAL
    out["success"] &= ~(so & (dns_fail | radio_fail))
    fi = srv == FILE
    out["success"] &= ~(fi & (dns_fail | (thr < 300) & (d["u1"] < 0.4) | radio_fail))

    # durations and volumes follow from the quality where they depend on it
    vol_dl = np.where(w | so | fi, size_mb * 1e6, 0.0)
    vol_dl = np.where(v, bitrate * 1000 / 8 * dur_v, vol_dl)
    vol_dl = np.where(c, 5000 * dur, vol_dl)
    vol_dl = np.where(g, 8000 * dur, vol_dl)
    vol_dl = np.where(out["success"] | c | g, vol_dl, vol_dl * 0.05)
    dur = np.where(w, plt / 1000 + dur, dur)
    dur = np.where(fi, size_mb * 8000 / np.maximum(thr, 1), dur)
    dur = np.where(v, dur_v + out["stall_ms"] / 1000, dur)
    out["duration_s"] = np.where(np.isnan(dur), 1.0, dur)
    out["vol_dl"] = vol_dl
    out["vol_ul"] = np.where(c, vol_dl, vol_dl * 0.06)
    return out


def badness(sub: dict, d: dict, q: dict) -> np.ndarray:
    """How bad each session felt to its user, 0-1: the hidden 'truth' behind satisfaction.

    Deliberately not the CEI formula the platform computes: the platform has to learn it.
    """
    tol = sub["tolerance"][d["sub"]]
    srv = d["service"]
    b = np.zeros(len(srv))
    b = np.where(srv == WEB, _sigmoid((q["page_load"] / tol - 6000) / 1500), b)
    stall_ratio = q["stall_ms"] / 1000 / np.maximum(q["duration_s"], 1)
    vid = np.maximum.reduce([
        _sigmoid((stall_ratio / tol - 0.04) / 0.015), _sigmoid((q["init_buf"] / tol - 6000) / 1500),
        0.4 * (q["resolution"] < 480),
    ])
    b = np.where(srv == VIDEO, vid, b)
    voice = np.maximum(_sigmoid((q["delay"] / tol - 260) / 40), _sigmoid((q["loss"] / tol - 2.5) / 0.8))
    b = np.where(srv == VOICE, np.where(q["dropped"], 1.0, voice), b)
    b = np.where(srv == GAMING, np.maximum(_sigmoid((q["rtt"] / tol - 130) / 25),
                                           _sigmoid((q["jitter"] / tol - 45) / 10)), b)
    b = np.where(srv == SOCIAL, _sigmoid((q["rtt"] / tol - 450) / 100), b)
    b = np.where(srv == FILE, _sigmoid((1500 - q["throughput"] * tol) / 500), b)
    return np.where(q["success"], b, 1.0)
