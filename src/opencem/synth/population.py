"""Synthetic subscribers: BSS attributes, mobility anchors, usage habits and satisfaction traits."""

from __future__ import annotations

import zlib

import numpy as np
import pyarrow as pa

from ..vocabulary import SERVICES
from .city import CITY_RADIUS_M, CORE_RADIUS_M, HIGHWAY_END_M

# plan: share, median ARPU (EUR/month), ARPU log-sd, baseline satisfaction shift, tolerance factor
PLAN_TABLE = {
    "prepaid_basic": (0.22, 9.0, 0.35, -0.2, 1.20),
    "prepaid_plus": (0.13, 16.0, 0.30, -0.1, 1.10),
    "postpaid_s": (0.22, 22.0, 0.25, 0.0, 1.00),
    "postpaid_m": (0.20, 35.0, 0.25, 0.1, 0.95),
    "postpaid_l": (0.13, 55.0, 0.30, 0.2, 0.90),
    "business": (0.10, 48.0, 0.45, -0.2, 0.80),
}
PLANS = tuple(PLAN_TABLE)  # the synthetic operator's own plan names
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")

# model, vendor, capability, release year, market share; one model is the target of a device fault
DEVICES = [
    ("Aurora 12", "Aurora", "5G", 2024, 0.12), ("Aurora 11", "Aurora", "5G", 2023, 0.10),
    ("Aurora 8", "Aurora", "4G", 2019, 0.06), ("Galen S24", "Galen", "5G", 2024, 0.10),
    ("Galen A35", "Galen", "5G", 2024, 0.11), ("Galen A12", "Galen", "4G", 2020, 0.08),
    ("Pixo 8", "Pixo", "5G", 2023, 0.05), ("Nova X5", "Nova", "5G", 2024, 0.09),
    ("Nova Lite 3", "Nova", "4G", 2021, 0.09), ("Orbi M2", "Orbi", "5G", 2022, 0.07),
    ("Orbi C1", "Orbi", "4G", 2018, 0.07), ("Kito K10", "Kito", "4G", 2017, 0.06),
]
AGE_SHARE = (0.11, 0.19, 0.19, 0.18, 0.16, 0.17)
# mean sessions per day per service for an average user
SERVICE_RATE = np.array([5.0, 2.0, 3.0, 0.3, 6.0, 0.4])
DISTRICTS_PER_RING = 6


def _district(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    r = np.hypot(x, y)
    sector = ((np.degrees(np.arctan2(y, x)) % 360) // (360 / DISTRICTS_PER_RING)).astype(int)
    names = np.where(
        r < CORE_RADIUS_M, np.char.add("Centre-", sector.astype(str)),
        np.where(r < CITY_RADIUS_M, np.char.add("Suburb-", sector.astype(str)), "Eastway"),
    )
    return names


def _points_in_city(n: int, rng: np.random.Generator, core_share: float) -> tuple[np.ndarray, np.ndarray]:
    """Homes and workplaces: a dense core (Gaussian) over a thinner suburban disc."""
    in_core = rng.random(n) < core_share
    r = np.where(in_core, np.abs(rng.normal(0, CORE_RADIUS_M * 0.55, n)),
                 CITY_RADIUS_M * np.sqrt(rng.uniform(0.04, 0.95, n)))
    a = rng.uniform(0, 2 * np.pi, n)
    return r * np.cos(a), r * np.sin(a)


def make_subscribers(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """All per-subscriber arrays; BSS columns plus hidden traits used only inside the simulator."""
    plans = np.array(list(PLAN_TABLE))
    p = rng.choice(len(plans), n, p=[v[0] for v in PLAN_TABLE.values()])
    plan_arr = np.array(list(PLAN_TABLE.values()))
    arpu = plan_arr[p, 1] * rng.lognormal(0, plan_arr[p, 2])
    age = rng.choice(len(AGE_BANDS), n, p=AGE_SHARE)
    tenure = np.minimum(rng.exponential(40, n), 300).astype(np.int32)

    dev = np.array(DEVICES, dtype=object)
    share = np.array([d[4] for d in DEVICES], dtype=float)
    # younger and higher-value customers hold newer, 5G handsets more often
    d = rng.choice(len(DEVICES), n, p=share / share.sum())
    old_device = np.array([d_[3] <= 2019 for d_ in DEVICES])
    upgrade = old_device[d] & ((arpu > 30) | (age <= 1)) & (rng.random(n) < 0.6)
    d = np.where(upgrade, rng.choice([0, 3, 4], n), d)

    home_x, home_y = _points_in_city(n, rng, 0.45)
    work_x, work_y = _points_in_city(n, rng, 0.7)
    highway_commuter = rng.random(n) < 0.08
    work_x = np.where(highway_commuter, rng.uniform(CITY_RADIUS_M + 1500, HIGHWAY_END_M - 1000, n), work_x)
    work_y = np.where(highway_commuter, rng.normal(0, 150, n), work_y)
    has_work = (age <= 4) & (rng.random(n) < 0.78) | highway_commuter
    leisure_x, leisure_y = _points_in_city(n, rng, 0.8)

    # usage: overall intensity and per-service taste; young users stream and game more
    intensity = rng.lognormal(0, 0.5, n)
    youth = np.array([1.5, 1.25, 1.0, 0.85, 0.7, 0.55])[age]
    taste = rng.lognormal(0, 0.4, (n, len(SERVICES)))
    taste[:, 1] *= youth
    taste[:, 4] *= youth
    taste[:, 2] /= np.sqrt(youth)
    gamer = rng.random(n) < 0.25 * youth
    taste[:, 3] *= np.where(gamer, 7.0, 0.15)
    rate = SERVICE_RATE[None, :] * taste * intensity[:, None]

    # satisfaction traits: the baseline score a customer gives with flawless service, how strongly
    # experience moves it (sensitivity), and how much degradation they tolerate (tolerance)
    base = (9.3 + plan_arr[p, 3] + np.array([-0.35, -0.15, 0.0, 0.05, 0.2, 0.45])[age]
            + 0.15 * (tenure > 48) + rng.normal(0, 1.35, n))
    sensitivity = rng.lognormal(0, 0.3, n) * np.where(p == 5, 1.3, 1.0) * np.where(intensity > 1.5, 1.15, 1.0)
    tolerance = plan_arr[p, 4] * np.array([0.95, 0.97, 1.0, 1.02, 1.08, 1.15])[age] * rng.lognormal(0, 0.1, n)

    value_rank = arpu  # survey response propensity grows mildly with value and age
    respond = np.array([0.6, 0.8, 1.0, 1.1, 1.25, 1.4])[age] * np.where(value_rank > 40, 1.2, 1.0)

    ids = np.char.add("+9990", np.char.zfill(np.arange(n).astype(str), 8))
    return {
        "subscriber_id": ids, "plan": plans[p], "plan_idx": p, "arpu": np.round(arpu, 2),
        "tenure_months": tenure, "device_idx": d,
        "device_model": dev[d, 0].astype(str), "device_vendor": dev[d, 1].astype(str),
        "device_capability": dev[d, 2].astype(str), "is_5g": dev[d, 2] == "5G",
        "age_idx": age, "age_band": np.array(AGE_BANDS)[age],
        "home_x": home_x, "home_y": home_y, "work_x": work_x, "work_y": work_y,
        "leisure_x": leisure_x, "leisure_y": leisure_y, "has_work": has_work,
        "highway_commuter": highway_commuter,
        "home_area": _district(home_x, home_y),
        "indoor_home_db": rng.uniform(6, 20, n), "indoor_work_db": rng.uniform(8, 22, n),
        "rate": rate, "gamer": gamer,
        "base": base, "sensitivity": sensitivity, "tolerance": tolerance, "respond": respond,
        "consent_location": rng.random(n) < 0.35, "consent_preferences": rng.random(n) < 0.25,
        "consent_marketing": rng.random(n) < 0.55,
    }


def device_tac(models: np.ndarray) -> np.ndarray:
    """One 8-digit Type Allocation Code per handset model (reporting body 35, then a stable hash of the name)."""
    tac = {m: f"35{zlib.crc32(m.encode()) % 1_000_000:06d}" for m in np.unique(models)}
    return np.array([tac[m] for m in models])


def subscribers_table(sub: dict[str, np.ndarray]) -> pa.Table:
    return pa.table({
        "subscriber_id": sub["subscriber_id"], "plan": sub["plan"],
        "arpu_monthly": sub["arpu"], "tenure_months": sub["tenure_months"].astype(np.int32),
        "device_model": sub["device_model"], "device_tac": device_tac(sub["device_model"]),
        "device_vendor": sub["device_vendor"],
        "device_capability": sub["device_capability"], "home_area": sub["home_area"],
        "age_band": sub["age_band"], "consent_location": sub["consent_location"],
        "consent_preferences": sub["consent_preferences"], "consent_marketing": sub["consent_marketing"],
    })


def contracts_table(sub: dict[str, np.ndarray], start: np.datetime64, rng: np.random.Generator) -> pa.Table:
    """Each subscriber's current contract: prepaid has no minimum term; postpaid and business contracts run 12 or
    24 months, renewed within the customer's tenure. Drawn from its own random stream: it changes no other table."""
    n = len(sub["subscriber_id"])
    prepaid = np.char.startswith(sub["plan"].astype(str), "prepaid")
    term = np.where(prepaid, 0, rng.choice([12, 24], n, p=[0.35, 0.65]))
    into = np.floor(rng.random(n) * np.minimum(np.maximum(sub["tenure_months"], 1), np.maximum(term, 1)) * 30.4).astype(int)
    first = np.datetime64(start, "D") - into.astype("timedelta64[D]")
    end = first + np.round(term * 30.4).astype("timedelta64[D]") - np.timedelta64(1, "D")
    kind = np.where(prepaid, "prepaid", np.char.add(np.where(sub["plan"] == "business", "business_", "postpaid_"),
                                                    np.char.add(term.astype(str), "m")))
    return pa.table({"subscriber_id": sub["subscriber_id"], "contract_type": kind, "start_date": first,
                     "commitment_end": pa.array(np.where(prepaid, None, end.astype(object)), pa.date32())})
