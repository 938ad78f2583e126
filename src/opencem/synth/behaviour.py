"""How customers feel and act: latent satisfaction, surveys, care contacts, churn, for one chunk of
subscribers over the whole window. Experience drives satisfaction with recency and worst moments."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .city import xy_to_latlon
from .faults import MIN_PER_DAY
from .sessions import VOICE, Context, badness, draw_sessions, physics

SERVICE_WEIGHT = np.array([1.0, 1.2, 1.5, 1.0, 0.6, 0.8])
MEMORY = 0.88  # daily decay of experience memory (half-life about 5.4 days)
WORST_DECAY = 0.8  # EMA of each day's worst session
NET_GAIN, WORST_GAIN = 9.0, 1.5
ANSWER_NOISE_SD = 0.9  # sd of a survey answer around the latent satisfaction
SHOCK_DECAY = {"price": 0.977, "billing": 0.933, "care": 0.952}
NET_CATS = ("coverage", "data_speed", "voice_quality")
CHURN_CAUSES = ("network_coverage", "network_speed", "network_voice", "price", "billing", "care", "other")
SURVEY_CHANNELS, SURVEY_CHANNEL_P = ["sms", "email", "ivr", "app"], [.3, .35, .15, .2]
INVITES_PER_ANSWER = 5.0  # relationship invitations sent per expected answer (a 20 % response rate on average)
TRACKER_SAMPLE = 1000  # customers drawn per tracker wave
TRACKER_FIRST_DAY, TRACKER_EVERY, TRACKER_FIELD_DAYS = 7, 30, 7  # waves on days 7, 37, ...; a week of fieldwork
TRACKER_RESPONSE = 0.85  # followed up until most answer; who answers does not depend on satisfaction


def nps_class(score: np.ndarray) -> np.ndarray:
    s = np.round(np.clip(score, 0, 10))
    return np.where(s >= 9, "promoter", np.where(s >= 7, "passive", "detractor"))


def simulate_chunk(ctx: Context, sub: dict, idx: np.ndarray, chunk: int, params: dict, write, rng) -> dict:
    """Run `idx` subscribers through every day; `write(table, day, arrow_table)` stores the big tables,
    the small ones (surveys, care, truth) come back in the returned dict."""
    m = len(idx)
    sch = ctx.schedule
    days = ctx.days
    start_date = params["start_date"]
    geo_home = ctx.radio.geometry(sub["home_x"][idx], sub["home_y"][idx])
    geo_work = ctx.radio.geometry(sub["work_x"][idx], sub["work_y"][idx])
    base, sens = sub["base"][idx], sub["sensitivity"][idx]
    fixes = sch.fixes
    worlds = [frozenset()] + [frozenset([f.fix_id]) for f in fixes]  # actual, then one without each fix
    mem = np.zeros((len(worlds), 3, m))  # network memory per world and category
    worst = np.zeros((len(worlds), m))
    shock = {k: np.zeros(m) for k in SHOCK_DECAY}
    sat_long = base - 1.0
    # churners who decided before the window and leave during it
    pre = rng.random(m) < 0.02 * np.exp(0.5 * (6.5 - base)).clip(0.3, 4)
    decision = np.where(pre, -rng.integers(1, 60, m), 10**6)
    portout = np.where(pre, decision + rng.integers(7, 61, m), 10**6)
    cause = np.full(m, "other", dtype=object)
    events: dict[str, list] = {k: [] for k in ("surveys", "care", "nonnet", "daily", "nps", "fix_kqi", "invitations", "tracker")}
    affected = {f.fix_id: np.zeros(m) for f in fixes}
    post_sat = {f.fix_id: np.zeros((2, m)) for f in fixes}
    post_census = {f.fix_id: np.zeros((2, m)) for f in fixes}  # expected answer's NPS (-1..1), with / without
    post_days = {f.fix_id: 0 for f in fixes}
    ids = {"survey": 0, "contact": 0, "invitation": 0, "tracker": 0}
    # invitations and the tracker draw from their own stream, so every other table is the same with or without them
    rng_obs = np.random.default_rng([params["seed"], 2000 + chunk])
    tracker_day = np.full(m, -1)  # day a tracker respondent answers (-1: not in a wave)
    price = params["price_event"]  # (day, plan index)
    billing_day = params["billing_day"]
    fault_ids = np.array([f.fault_id for f in sch.faults])

    for day in range(days):
        active = portout > day
        act_idx = np.flatnonzero(active)
        d = draw_sessions(ctx, sub, idx[act_idx], day, _take(geo_home, act_idx), _take(geo_work, act_idx), rng)
        d["local"] = act_idx[np.searchsorted(idx[act_idx], d["sub"])]
        q = physics(ctx, sub, d)
        b = badness(sub, d, q)
        tag = _fault_tags(ctx, sub, d, q)
        b_world = [b]
        for f in fixes:
            bw = b.copy()
            if day >= f.day:
                hit = sub["device_model"][d["sub"]] == f.device_model if f.device_model else np.isin(q["cell"], f.cells)
                if hit.any():
                    dd = {k: (v[hit] if isinstance(v, np.ndarray) else v) for k, v in d.items()}
                    qc = physics(ctx, sub, dd, frozenset([f.fix_id]))
                    bw[hit] = badness(sub, dd, qc)
                    affected[f.fix_id] += np.bincount(d["local"][hit], minlength=m)
                    events["fix_kqi"].append(_fix_kqi(f.fix_id, day, dd, q, qc, hit, b[hit], bw[hit]))
            b_world.append(bw)

        # daily experience -> memory per world
        w = SERVICE_WEIGHT[d["service"]]
        wsum = np.bincount(d["local"], w, minlength=m)
        cat = np.where(q["rsrp"] < -113, 0, np.where(d["service"] == VOICE, 2, 1))
        seen = wsum > 0
        if day == 0:
            # memory starts in steady state: the first day's experience without injected faults
            # stands for the weeks before the window
            normal = tag < 0
            for c in range(3):
                mem[:, c] = _day_bad(d["local"], w * normal, b, cat == c, m)
            worst[:] = _day_top(d["local"], np.where(normal, b, 0.0), m)
        for wi, bw in enumerate(b_world):
            for c in range(3):
                day_bad = _day_bad(d["local"], w, bw, cat == c, m)
                mem[wi, c] = np.where(seen, MEMORY * mem[wi, c] + (1 - MEMORY) * day_bad, mem[wi, c])
            worst[wi] = np.where(seen, WORST_DECAY * worst[wi] + (1 - WORST_DECAY) * _day_top(d["local"], bw, m), worst[wi])

        # non-network shocks
        for k, dec in SHOCK_DECAY.items():
            shock[k] *= dec
        new_events = []
        if day == price[0]:
            hit = active & (sub["plan_idx"][idx] == price[1])
            shock["price"] += 1.3 * hit
            new_events.append(("price", np.flatnonzero(hit)))
        if day == billing_day:
            hit = active & (rng.random(m) < 0.015)
            shock["billing"] += 2.5 * hit
            new_events.append(("billing", np.flatnonzero(hit)))

        net_pen = sens[None, :] * (NET_GAIN * mem.sum(axis=1) + WORST_GAIN * worst)  # per world
        non_pen = shock["price"] + shock["billing"] + shock["care"]
        sat = base[None, :] - net_pen - non_pen[None, :]
        s_now = sat[0]

        # care contacts: network pressure and shocks raise the complaint hazard
        p_compl = 0.0002 + 0.002 * np.clip(net_pen[0] - 1.5, 0, None) + 0.25 * (shock["billing"] > 2.4) \
            + 0.02 * shock["billing"] + 0.006 * shock["price"]
        complain = active & (rng.random(m) < p_compl)
        enquire = active & ~complain & (rng.random(m) < 0.0015)
        cw = np.vstack([sens * mem[0, 0] * 9, sens * mem[0, 1] * 9, sens * mem[0, 2] * 9,
                        np.zeros(m), shock["billing"], shock["price"], np.full(m, 0.05)])
        dev_fault = next((f for f in sch.faults if f.cause == "device"), None)
        if dev_fault is not None and day * MIN_PER_DAY >= dev_fault.start_min:
            on_model = sub["device_model"][idx] == dev_fault.params["model"]
            cw[3] = np.where(on_model, cw[1] + cw[2], 0)
        categories = np.array(["coverage", "data_speed", "voice_quality", "device", "billing", "price", "other"])
        who = np.flatnonzero(complain | enquire)
        if len(who):
            probs = cw[:, who] + 1e-6
            probs = probs / probs.sum(axis=0)
            pick = (rng.random(len(who))[None, :] > np.cumsum(probs, axis=0)).sum(axis=0)
            cat_name = np.where(enquire[who] & (rng.random(len(who)) < 0.6), "other", categories[np.minimum(pick, 6)])
            resolved = rng.random(len(who)) < np.where(np.isin(cat_name, NET_CATS), 0.45, 0.75)
            poor_care = ~resolved & (rng.random(len(who)) < 0.5)
            shock["care"][who[poor_care]] += 1.2
            new_events.append(("care", who[poor_care]))
            t = start_date + np.timedelta64(day, "D") + (rng.uniform(8, 21, len(who)) * 3600e3).astype("timedelta64[ms]")
            events["care"].append(pa.table({
                "contact_id": chunk * 1_000_000_000 + ids["contact"] + np.arange(len(who)),
                "subscriber_id": sub["subscriber_id"][idx[who]], "contact_time": t,
                "channel": rng.choice(["call_centre", "app", "shop", "chat"], len(who), p=[.5, .25, .1, .15]),
                "category": cat_name, "is_complaint": complain[who], "resolved": resolved,
            }))
            ids["contact"] += len(who)
        for kind, who_ev in new_events:
            if len(who_ev):
                events["nonnet"].append((kind, day, sub["subscriber_id"][idx[who_ev]]))

        # surveys: a relational sample biased towards the unhappy and the older, plus after-contact surveys
        # normalised over today's base so the relational rate is survey_rate whatever the mood
        bias = sub["respond"][idx] * np.exp(0.3 * np.clip(7 - s_now, -2, 4))
        p_resp = params["survey_rate"] / 30 * bias / bias[active].mean()
        resp = active & (rng.random(m) < p_resp)
        after_care = np.zeros(m, dtype=bool)
        after_care[who] = rng.random(len(who)) < 0.1
        resp |= after_care & active
        r_idx = np.flatnonzero(resp)
        survey_ids = chunk * 1_000_000_000 + ids["survey"] + np.arange(len(r_idx))
        t = np.array([], dtype="datetime64[ms]")
        channel = np.array([], dtype=object)
        if len(r_idx):
            score = np.clip(np.round(s_now[r_idx] + rng.normal(0, ANSWER_NOISE_SD, len(r_idx))), 0, 10).astype(np.int32)
            t = start_date + np.timedelta64(day, "D") + (rng.uniform(9, 21, len(r_idx)) * 3600e3).astype("timedelta64[ms]")
            channel = np.where(after_care[r_idx], "sms", rng.choice(SURVEY_CHANNELS, len(r_idx), p=SURVEY_CHANNEL_P))
            events["surveys"].append(pa.table({
                "survey_id": survey_ids, "subscriber_id": sub["subscriber_id"][idx[r_idx]], "survey_time": t,
                "channel": channel, "score": score,
            }))
            ids["survey"] += len(r_idx)
        events["invitations"].append(_invitations(
            rng_obs, day, start_date, active, p_resp, params["survey_rate"], who, after_care, r_idx, survey_ids, t, channel,
            sub["subscriber_id"][idx], chunk, ids))
        events["tracker"].append(_tracker(rng_obs, day, days, start_date, active, s_now, tracker_day, params["tracker_share"],
                                          sub["subscriber_id"][idx], chunk, ids))

        # churn: the hazard follows long-run satisfaction, value and tenure; port-out comes weeks later
        sat_long = 0.95 * sat_long + 0.05 * s_now
        arpu = sub["arpu"][idx]
        h = 0.0003 * np.exp(0.9 * (6.5 - sat_long)) * np.where(arpu < 15, 1.5, 1.0) \
            * np.where(sub["tenure_months"][idx] < 12, 1.4, 1.0) * np.where(sub["plan_idx"][idx] == 5, 0.6, 1.0)
        decide = active & (decision > day) & (rng.random(m) < h)
        if decide.any():
            comp = np.vstack([sens * 9 * mem[0, 0], sens * 9 * mem[0, 1], sens * 9 * mem[0, 2],
                              shock["price"], shock["billing"], shock["care"]])
            comp[:3] += sens * WORST_GAIN * worst[0] * (comp[:3] == comp[:3].max(axis=0))
            top = comp.argmax(axis=0)
            cause = np.where(decide, np.where(comp.max(axis=0) > 0.6, np.array(CHURN_CAUSES)[top], "other"), cause)
            decision = np.where(decide, day, decision)
            portout = np.where(decide, day + rng.integers(7, 61, m), portout)

        # ground truth of the day
        main_fault = _main_fault(d["local"], tag, b, m)
        events["daily"].append(pa.table({
            "subscriber_id": sub["subscriber_id"][idx[act_idx]],
            "date": pa.array(np.full(len(act_idx), start_date + np.timedelta64(day, "D")).astype("datetime64[D]"), pa.date32()),
            "satisfaction": s_now[act_idx].astype(np.float32),
            "nps_class": nps_class(s_now[act_idx]),
            "network_penalty": net_pen[0, act_idx].astype(np.float32),
            "nonnetwork_penalty": non_pen[act_idx].astype(np.float32),
            "main_fault_id": pa.array(np.where(main_fault[act_idx] >= 0, fault_ids[np.maximum(main_fault[act_idx], 0)], None), pa.string()),
        }))
        events["nps"].append(_nps_sums(day, s_now[act_idx]))
        answer = _answer_nps(sat) if any(day >= f.day for f in fixes) else None  # every world's, once a day
        for wi, f in enumerate(fixes, start=1):
            if day >= f.day:
                post_sat[f.fix_id] += np.vstack([s_now, sat[wi]])
                post_census[f.fix_id] += np.vstack([answer[0], answer[wi]])
                post_days[f.fix_id] += 1

        write("xdr", day, _xdr_table(ctx, sub, d, q, day, chunk, start_date))
        write("radio_samples", day, _mr_table(ctx, sub, d, q, start_date, rng))

    out = {k: events[k] for k in ("surveys", "daily", "nps", "fix_kqi", "nonnet", "invitations", "tracker")}
    out["care_contacts"] = events["care"]
    leaving = np.flatnonzero(portout < 10**6)
    pdate = start_date.astype("datetime64[D]")
    out["churners"] = pa.table({
        "subscriber_id": sub["subscriber_id"][idx[leaving]],
        "decision_date": pa.array(pdate + decision[leaving].astype("timedelta64[D]"), pa.date32()),
        "portout_date": pa.array(pdate + portout[leaving].astype("timedelta64[D]"), pa.date32()),
        "cause": cause[leaving].astype(str),
        "in_window": portout[leaving] < days,
    })
    rows = []
    for f in fixes:
        hit = np.flatnonzero(affected[f.fix_id] > 0)
        n_post = max(post_days[f.fix_id], 1)
        rows.append(pa.table({
            "fix_id": np.full(len(hit), f.fix_id), "subscriber_id": sub["subscriber_id"][idx[hit]],
            "sessions_affected": affected[f.fix_id][hit].astype(np.int64),
            "satisfaction_with_fix": (post_sat[f.fix_id][0, hit] / n_post).astype(np.float32),
            "satisfaction_without_fix": (post_sat[f.fix_id][1, hit] / n_post).astype(np.float32),
            "answer_nps_with_fix": (post_census[f.fix_id][0, hit] / n_post).astype(np.float32),
            "answer_nps_without_fix": (post_census[f.fix_id][1, hit] / n_post).astype(np.float32),
        }))
    out["fix_affected"] = rows
    return out


def _invitations(rng, day, start_date, active, p_resp, survey_rate, care_who, after_care, r_idx, survey_ids, answer_time,
                 answer_channel, sub_ids, chunk, ids) -> pa.Table:
    """Who was asked today. Every answer came from an invitation; relationship invitations also went to
    customers who did not answer, at a rate that makes a customer's chance to answer an invitation
    P(answer) / P(invited) (so the unhappy answer more often, as they do), and every care contact got
    an SMS invitation afterwards."""
    m = len(active)
    p_inv = np.maximum(INVITES_PER_ANSWER * survey_rate / 30, p_resp).clip(0, 1)
    answered = np.zeros(m, dtype=bool)
    answered[r_idx] = True
    silent = active & ~answered & (rng.random(m) < (p_inv - p_resp) / np.maximum(1 - p_resp, 1e-9))
    care_silent = np.zeros(m, dtype=bool)
    care_silent[care_who] = True
    care_silent &= active & ~answered  # after-care answers are among the answered
    silent_idx = np.flatnonzero(silent & ~care_silent)
    care_idx = np.flatnonzero(care_silent)
    who = np.concatenate([r_idx, silent_idx, care_idx])
    day0 = start_date + np.timedelta64(day, "D")
    # an answer comes 5 minutes to 3 hours after its invitation; an unanswered one is sent between 08:00 and 21:00
    lag = (rng.uniform(5, 180, len(r_idx)) * 60e3).astype("timedelta64[ms]")
    sent = np.concatenate([answer_time - lag, day0 + (rng.uniform(8, 21, len(silent_idx) + len(care_idx)) * 3600e3).astype("timedelta64[ms]")])
    trigger = np.concatenate([np.where(after_care[r_idx], "after_care", "relationship"),
                              np.full(len(silent_idx), "relationship"), np.full(len(care_idx), "after_care")])
    channel = np.concatenate([answer_channel.astype(object), rng.choice(SURVEY_CHANNELS, len(silent_idx), p=SURVEY_CHANNEL_P),
                              np.full(len(care_idx), "sms")])
    t = pa.table({
        "invitation_id": chunk * 1_000_000_000 + ids["invitation"] + np.arange(len(who)),
        "subscriber_id": sub_ids[who], "invite_time": sent.astype("datetime64[ms]"), "channel": channel.astype(str),
        "trigger": trigger.astype(str),
        "survey_id": pa.array(np.concatenate([survey_ids, np.zeros(len(who) - len(r_idx), dtype=np.int64)]),
                              mask=np.arange(len(who)) >= len(r_idx)),
    })
    ids["invitation"] += len(who)
    return t


def _tracker(rng, day, days, start_date, active, s_now, answer_day, share, sub_ids, chunk, ids) -> pa.Table:
    """The representative study: on each wave day a random ``share`` of the active base is drawn and
    most answer within a week of fieldwork, whoever they are, with the surveys' answer noise."""
    m = len(active)
    if day >= TRACKER_FIRST_DAY and (day - TRACKER_FIRST_DAY) % TRACKER_EVERY == 0:
        drawn = active & (rng.random(m) < share) & (rng.random(m) < TRACKER_RESPONSE)
        answer_day[drawn] = day + rng.integers(0, TRACKER_FIELD_DAYS, m)[drawn]
    now = np.flatnonzero(active & (answer_day == day))
    answer_day[answer_day == day] = -1
    score = np.clip(np.round(s_now[now] + rng.normal(0, ANSWER_NOISE_SD, len(now))), 0, 10).astype(np.int32)
    wave = TRACKER_FIRST_DAY + (day - TRACKER_FIRST_DAY) // TRACKER_EVERY * TRACKER_EVERY
    t = pa.table({
        "response_id": chunk * 1_000_000_000 + ids["tracker"] + np.arange(len(now)),
        "subscriber_id": sub_ids[now],
        "wave_date": pa.array(np.full(len(now), (start_date + np.timedelta64(wave, "D")).astype("datetime64[D]")), pa.date32()),
        "answer_time": start_date + np.timedelta64(day, "D") + (rng.uniform(9, 21, len(now)) * 3600e3).astype("timedelta64[ms]"),
        "score": score,
    })
    ids["tracker"] += len(now)
    return t


def _day_bad(local, w, b, in_cat, m):
    """Usage-weighted share of the day's badness that falls in one category, per subscriber."""
    return np.bincount(local, w * b * in_cat, minlength=m) / np.maximum(np.bincount(local, w, minlength=m), 1e-9)


def _day_top(local, b, m):
    """The day's worst moment: the worst session, cubed so that only really bad ones count."""
    top = np.zeros(m)
    np.maximum.at(top, local, b)
    return top ** 3


def _take(geo, rows):
    return tuple(g[rows] for g in geo)


def _fault_tags(ctx: Context, sub: dict, d: dict, q: dict) -> np.ndarray:
    """Index of the injected fault that touched each session, -1 where none did."""
    tag = np.full(len(d["sub"]), -1)
    t = d["start"]
    for i, f in enumerate(ctx.schedule.faults):
        act = (t >= f.start_min) & (t < f.end_min)
        if f.cause == "device":
            hit = act & (sub["device_model"][d["sub"]] == f.params["model"])
        elif f.cause in ("coverage", "interference"):
            dist = np.hypot(d["x"] - f.center_xy[0], d["y"] - f.center_xy[1])
            hit = act & (dist < f.radius_m)
        elif f.cause == "congestion":
            hit = act & np.isin(q["cell"], f.cells) & (q["load"] > 0.85)
        else:
            hit = act & np.isin(q["cell"], f.cells)
        tag = np.where(hit & (tag < 0), i, tag)
    return tag


def _main_fault(local: np.ndarray, tag: np.ndarray, b: np.ndarray, m: int) -> np.ndarray:
    """Per subscriber, the fault behind most of the day's bad experience (-1: none)."""
    out = np.full(m, -1)
    sel = (tag >= 0) & (b > 0.3)
    if not sel.any():
        return out
    key = local[sel] * 1000 + tag[sel]
    uk, inv = np.unique(key, return_inverse=True)
    tot = np.bincount(inv, b[sel])
    order = np.lexsort((tot, uk // 1000))
    last = np.r_[np.diff(uk[order] // 1000) != 0, True]
    best = uk[order][last]
    out[best // 1000] = best % 1000
    return out


def _answer_probs(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's chance that an answer today is a 9-10 and a 0-6 (latent satisfaction + answer noise)."""
    from scipy.stats import norm

    return 1 - norm.cdf((8.5 - s) / ANSWER_NOISE_SD), norm.cdf((6.5 - s) / ANSWER_NOISE_SD)


def _answer_nps(s: np.ndarray) -> np.ndarray:
    """Each customer's expected contribution to a survey NPS today (-1..1)."""
    p_prom, p_det = _answer_probs(s)
    return p_prom - p_det


def _nps_sums(day: int, s: np.ndarray) -> dict:
    """Census NPS: expected share of 9-10 minus 0-6 answers if everybody answered, plus latent classes."""
    p_prom, p_det = _answer_probs(s)
    cls = nps_class(s)
    return {"day": day, "n": len(s), "p_prom": float(p_prom.sum()), "p_det": float(p_det.sum()),
            "promoters": int((cls == "promoter").sum()), "detractors": int((cls == "detractor").sum()),
            "satisfaction_sum": float(s.sum())}


def _fix_kqi(fix_id, day, dd, q, qc, hit, b, bc) -> dict:
    data = dd["service"] != VOICE
    return {
        "fix_id": fix_id, "n": int(hit.sum()), "n_data": int(data.sum()),
        "thr_with": float(q["throughput"][hit][data].sum()), "thr_without": float(qc["throughput"][data].sum()),
        "rtt_with": float(q["rtt"][hit][data].sum()), "rtt_without": float(qc["rtt"][data].sum()),
        "bad_with": float(b.sum()), "bad_without": float(bc.sum()),
    }


def _xdr_table(ctx, sub, d, q, day, chunk, start_date) -> pa.Table:
    n = len(d["sub"])
    srv = d["service"]
    start = start_date + (d["start"] * 60_000).astype("timedelta64[ms]")
    end = start + (q["duration_s"] * 1000).astype("timedelta64[ms]")
    voice = srv == VOICE
    video = srv == 1
    data_only = lambda a: pa.array(np.where(voice, np.nan, a), from_pandas=True)  # noqa: E731
    codec = np.where(sub["is_5g"][d["sub"]] & (d["u3"] < 0.7), "EVS", np.where(d["u3"] < 0.9, "AMR-WB", "AMR-NB"))
    return pa.table({
        "session_id": ((day * 4096 + chunk) << 28) + np.arange(n, dtype=np.int64),
        "subscriber_id": sub["subscriber_id"][d["sub"]],
        "service": np.array(["web", "video", "voice", "gaming", "social", "file_transfer"])[srv],
        "start_time": start, "end_time": end,
        "cell_id": ctx.city.cells["cell_id"][q["cell"]],
        "rat": np.where(q["rat_nr"], "NR", "LTE"),
        "volume_dl_bytes": q["vol_dl"].astype(np.int64), "volume_ul_bytes": q["vol_ul"].astype(np.int64),
        "success": q["success"],
        "throughput_dl_kbps": data_only(np.round(q["throughput"], 1)),
        "rtt_ms": data_only(np.round(q["rtt"], 1)),
        "page_load_ms": pa.array(np.round(q["page_load"], 0), from_pandas=True),
        "initial_buffer_ms": pa.array(np.where(video & q["success"], np.round(q["init_buf"], 0), np.nan), from_pandas=True),
        "stall_count": pa.array(np.where(video, q["stall_count"], np.nan), pa.float64(), from_pandas=True).cast(pa.int32()),
        "stall_ms": pa.array(np.round(q["stall_ms"], 0), from_pandas=True),
        "video_bitrate_kbps": pa.array(np.round(q["bitrate"], 0), from_pandas=True),
        "video_resolution_p": pa.array(np.where(video, q["resolution"], np.nan), pa.float64(), from_pandas=True).cast(pa.int32()),
        "call_setup_ms": pa.array(np.where(voice & q["success"], np.round(q["setup_ms"], 0), np.nan), from_pandas=True),
        "call_dropped": pa.array(np.where(voice, q["dropped"], None), pa.bool_()),
        "voice_delay_ms": pa.array(np.where(voice & q["success"], np.round(q["delay"], 1), np.nan), from_pandas=True),
        "jitter_ms": pa.array(np.where(voice & ~q["success"], np.nan, np.round(q["jitter"], 1)), from_pandas=True),
        "packet_loss_pct": pa.array(np.where(voice & q["success"], np.round(q["loss"], 2), np.nan), from_pandas=True),
        "codec": pa.array(np.where(voice, codec, None), pa.string()),
    })


def _mr_table(ctx, sub, d, q, start_date, rng) -> pa.Table:
    n = len(d["sub"])
    keep = rng.random(n) < 0.35
    gps = rng.random(n) < 0.6
    lat, lon = xy_to_latlon(d["x"] + rng.normal(0, 15, n), d["y"] + rng.normal(0, 15, n))
    k = np.flatnonzero(keep)
    return pa.table({
        "subscriber_id": sub["subscriber_id"][d["sub"][k]],
        "sample_time": start_date + (d["start"][k] * 60_000).astype("timedelta64[ms]"),
        "lat": pa.array(np.where(gps[k], np.round(lat[k], 6), np.nan), from_pandas=True),
        "lon": pa.array(np.where(gps[k], np.round(lon[k], 6), np.nan), from_pandas=True),
        "cell_id": ctx.city.cells["cell_id"][q["cell"][k]],
        "rsrp_dbm": np.round(q["rsrp"][k] + rng.normal(0, 1, len(k))),
        "rsrq_db": np.round(2 * (q["rsrq"][k] + rng.normal(0, 0.5, len(k)))) / 2,
        "sinr_db": np.round(np.clip(q["sinr"][k] + rng.normal(0, 1, len(k)), -20, 30), 1),
    })
