"""`opencem campaigns`: who to contact, for what, and what it is expected to bring.

Lists (``WS/segments/campaigns/as_of=D/<list>.parquet`` and ``.csv``, with ``campaigns.parquet``: each list's
size, expected uplift and the assumption behind it):

* ``proactive_care`` (a service message, not marketing): likely detractors with a network cause, optionally
  in given districts or grids;
* ``device_upsell``: heavy users on devices never seen on NR, whose places have good NR experience;
* ``plan_upsell``: heavy users with good experience who use far more than their plan's typical user;
* ``retention``: the churn stage's retention list (needs `opencem score churn`);
* ``win_back``: subscribers who ported out recently.

A subscriber without marketing consent is never in a marketing list: :func:`_consenting` filters every one of
them, and :func:`_write` refuses a marketing list that still holds one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..engine.pipeline import sql_file
from ..errors import InputError
from ..workspace import Workspace
from .common import CHURN_NEEDED, NR_RAT, WINDOW_DAYS, churn_files, load_base, load_behaviour, resolve_as_of, write_day

HEAVY_QUANTILE = 0.75  # heavy user: data volume per day at or above this quantile of the base
NR_SEEN = 0.01  # a capability label whose devices ran fewer than this share of sessions on NR cannot use NR
MIN_NR_SESSIONS = 30  # sessions on a site's NR cells before its NR experience is judged
NR_PLACES = 0.5  # share of a subscriber's sessions at sites with good NR
USAGE_RATIO = 2.0  # plan upsell: data volume per day at least this many times the plan's median user's


@dataclass(frozen=True)
class Assumptions:
    """The effect each campaign is assumed to have: stated with every list, set on the command line."""
    care_effect: float = 0.3  # share of the contacted likely detractors a proactive contact and fix turns into passives
    device_take_up: float = 0.05  # share of the device-upsell list that buys an NR device
    plan_take_up: float = 0.10  # share of the plan-upsell list that moves to the next plan up
    save_rate: float = 0.2  # share of would-be churners a retention offer keeps (used when the churn list has no value)
    win_back_rate: float = 0.05  # share of port-outs a win-back offer brings back
    value_months: int = 12  # months of ARPU a kept or won-back customer is worth


@dataclass
class CampaignResult:
    as_of: dt.date
    summary: pa.Table
    lists: dict[str, pa.Table]
    folder: Path
    notes: list[str] = field(default_factory=list)


def campaigns(workspace: Path, as_of: dt.date | None = None, areas: list[str] | None = None,
              assumptions: Assumptions = Assumptions(), without_nr: list[str] | None = None,
              win_back_days: int = 90, window_days: int = WINDOW_DAYS,
              progress: Callable[[str], None] | None = None) -> CampaignResult:
    """Build every list as of a day the NPS stage scored. ``without_nr``: the device capability labels that
    cannot use NR (default: read from the data, the labels whose devices were never seen on NR)."""
    say = progress or (lambda _m: None)
    ws = Workspace(workspace)
    as_of = resolve_as_of(ws, as_of)
    start = as_of - dt.timedelta(days=window_days)
    rows, lists, notes = [], {}, []
    with ws.session() as engine:
        say(f"the base scored as of {as_of}")
        base = load_base(engine, ws, as_of)
        m = base.members
        ids = m["subscriber_id"].to_numpy(zero_copy_only=False).astype(object)
        say("usage and places")
        beh = load_behaviour(engine, ids, as_of, "UTC", window_days)
        params = {"start": start, "as_of": as_of}
        cap = engine.query_arrow(sql_file("opencem.segments", "capability"), {**params, "nr_rat": NR_RAT}, step="capability")
        site_rat = engine.query_arrow(sql_file("opencem.segments", "site_rat"), params, step="site_rat")
        sub_sites = engine.query_arrow(sql_file("opencem.segments", "subscriber_sites"), params, step="subscriber_sites")
        prices = engine.query_arrow(sql_file("opencem.segments", "plan_prices"), {"as_of": as_of}, step="plan_prices")
        portouts = engine.query_arrow(sql_file("opencem.segments", "portouts"),
                                      {"as_of": as_of, "since": as_of - dt.timedelta(days=win_back_days)}, step="portouts")
        consent = engine.query_arrow(sql_file("opencem.segments", "consent"), step="consent")
    mb = beh.mb_per_day
    heavy_cut = float(np.quantile(mb, HEAVY_QUANTILE)) if len(mb) else 0.0
    heavy = mb >= heavy_cut
    score = m["expected_score"].to_numpy(zero_copy_only=False).astype(float)
    good = score >= (float(np.median(score)) if len(score) else 0.0)

    say("proactive care")
    lists["proactive_care"], row = _proactive_care(ws, as_of, m, areas, assumptions)
    rows.append(row)
    say("device upsell")
    lists["device_upsell"], row, note = _device_upsell(m, beh, heavy, heavy_cut, cap, site_rat, sub_sites, without_nr, assumptions)
    rows.append(row)
    notes += note
    say("plan upsell")
    lists["plan_upsell"], row, note = _plan_upsell(m, beh, heavy, good, prices, assumptions)
    rows.append(row)
    notes += note
    say("retention and win-back")
    lists["retention"], row = _retention(ws, as_of, consent, assumptions)
    rows.append(row)
    lists["win_back"], row = _win_back(portouts, m, base.has_churn, win_back_days, assumptions)
    rows.append(row)
    if not base.has_churn:
        notes.append(f"no churn scores as of {as_of}: {CHURN_NEEDED}")
    summary = pa.Table.from_pylist(rows, schema=SUMMARY)
    folder = _write(ws.segments / "campaigns", as_of, summary, lists)
    return CampaignResult(as_of, summary, lists, folder, notes)


SUMMARY = pa.schema([("list", pa.string()), ("marketing", pa.bool_()), ("subscribers", pa.int64()),
                     ("left_out_without_consent", pa.int64()), ("expected_uplift", pa.float64()), ("uplift_unit", pa.string()),
                     ("assumption", pa.string()), ("available", pa.bool_())])


def _consenting(t: pa.Table) -> tuple[pa.Table, int]:
    """The rows with marketing consent (a missing answer is no consent), and how many were left out."""
    keep = pc.fill_null(t["consent_marketing"], False)
    out = t.filter(keep)
    return out, t.num_rows - out.num_rows


def _row(name, marketing, t, left_out, uplift, unit, assumption, available=True) -> dict:
    return {"list": name, "marketing": marketing, "subscribers": t.num_rows, "left_out_without_consent": left_out,
            "expected_uplift": None if uplift is None else round(float(uplift), 2), "uplift_unit": unit,
            "assumption": assumption, "available": available}


# -- proactive care -------------------------------------------------------------------------------------------
def _proactive_care(ws: Workspace, as_of: dt.date, m: pa.Table, areas: list[str] | None, a: Assumptions):
    files = sorted(str(p) for p in (ws.nps / "potential_detractors" / f"as_of={as_of}").glob("*.parquet"))
    det = pq.read_table(files[0]) if files else None
    keep = ["subscriber_id", "home_area", "device_model", "consent_marketing"]
    if det is None or det.num_rows == 0:
        t = pa.table({"subscriber_id": pa.array([], pa.string())})
    else:
        det = det.filter(pc.fill_null(det["network_cause"], False))
        det = det.select(["subscriber_id", "rank", "p_detractor", "arpu_monthly", "plan", "grid", "cause", "reason"])
        t = det.join(m.select(keep), "subscriber_id", join_type="left outer").sort_by("rank")
    if areas:
        known = set(m["home_area"].to_pylist()) | set(m["grid"].to_pylist())
        unknown = [x for x in areas if x not in known]
        if unknown:
            raise InputError(f"--area {unknown[0]!r}: no subscriber's district (home_area) or grid is called that")
        if t.num_rows:
            wanted = pa.array(areas, pa.string())
            t = t.filter(pc.or_(pc.is_in(t["home_area"], wanted), pc.is_in(t["grid"], wanted)))
    if not t.num_rows:
        t = pa.table({c: pa.array([], ty) for c, ty in (("subscriber_id", pa.string()), ("p_detractor", pa.float64()))})
    mean_pd = float(np.mean(t["p_detractor"].to_numpy(zero_copy_only=False))) if t.num_rows else 0.0
    where = f" in {', '.join(areas)}" if areas else ""
    return t, _row("proactive_care", False, t, 0, 100 * a.care_effect * mean_pd, "NPS points of the listed subscribers",
                   f"likely detractors (P >= 0.5) with a network cause{where}; a service message, so sent regardless of "
                   f"marketing consent (no offer attached); a proactive contact with the fix assumed to turn "
                   f"{a.care_effect:.0%} of them into passives: lift = 100 x {a.care_effect:g} x mean P(detractor) {mean_pd:.2f}")


# -- 5G device upsell ------------------------------------------------------------------------------------------
def capability_without_nr(cap: pa.Table) -> tuple[list[str], list[str]]:
    """(labels never seen on NR, labels seen on it), from each label's share of sessions on NR."""
    none, some = [], []
    for r in cap.to_pylist():
        share = r["nr_sessions"] / r["sessions"] if r["sessions"] else 0.0
        (some if share >= NR_SEEN else none).append(r["device_capability"])
    return none, some


def _device_upsell(m, beh, heavy, heavy_cut, cap, site_rat, sub_sites, without_nr, a: Assumptions):
    notes = []
    derived_none, derived_some = capability_without_nr(cap)
    labels = list(without_nr) if without_nr else derived_none
    how = ("given with --without-nr" if without_nr else
           f"read from the data: devices labelled {', '.join(labels) or '(none)'} ran under {NR_SEEN:.0%} of their sessions "
           f"on NR, those labelled {', '.join(derived_some) or '(none)'} at least that")
    if not derived_some and not without_nr:
        notes.append("no device was seen on NR: the network has no NR, so there is no device upsell")
        labels = []
    # sites with good NR: enough NR sessions, and a poor-session share on NR no higher than the network's over all RATs
    sr = site_rat.to_pylist()
    overall = sum(r["poor_sessions"] for r in sr) / max(sum(r["sessions"] for r in sr), 1)
    nr = {r["site_id"]: r for r in sr if r["rat"] == NR_RAT}
    lte = {r["site_id"]: r for r in sr if r["rat"] != NR_RAT}
    good_sites = {s for s, r in nr.items() if r["sessions"] >= MIN_NR_SESSIONS and r["poor_share"] <= overall}
    ids = beh.ids
    sid = np.asarray(sub_sites["subscriber_id"].to_pylist(), dtype=object)
    site = np.asarray(sub_sites["site_id"].to_pylist(), dtype=object)
    n = sub_sites["sessions"].to_numpy(zero_copy_only=False).astype(float)
    pos = np.clip(np.searchsorted(ids, sid), 0, max(len(ids) - 1, 0))
    ok = (ids[pos] == sid) if len(ids) else np.zeros(len(sid), bool)
    at_good = np.array([s in good_sites for s in site], dtype=bool)
    tot, good_n = np.zeros(len(ids)), np.zeros(len(ids))
    np.add.at(tot, pos[ok], n[ok])
    np.add.at(good_n, pos[ok & at_good], n[ok & at_good])
    nr_places = np.divide(good_n, tot, out=np.zeros(len(ids)), where=tot > 0)
    capability = np.asarray(m["device_capability"].to_pylist(), dtype=object)
    pick = heavy & np.isin(capability, labels) & (nr_places >= NR_PLACES)
    t = m.filter(pa.array(pick)).select(["subscriber_id", "plan", "arpu_monthly", "device_model", "device_capability",
                                         "home_area", "grid", "consent_marketing"])
    t = t.append_column("mb_per_day", pa.array(np.round(beh.mb_per_day[pick], 1)))
    t = t.append_column("good_nr_place_share", pa.array(np.round(nr_places[pick], 3)))
    t = t.sort_by([("mb_per_day", "descending"), ("subscriber_id", "ascending")])
    t, left_out = _consenting(t)
    med = np.median
    gain = ""
    thr_nr = [nr[s]["median_dl_kbps"] for s in good_sites if nr[s]["median_dl_kbps"] is not None]
    thr_lte = [lte[s]["median_dl_kbps"] for s in good_sites if s in lte and lte[s]["median_dl_kbps"] is not None]
    if thr_nr and thr_lte:
        gain = (f"; at those sites the median data session gets {med(thr_nr) / 1000:.1f} Mbit/s on NR against "
                f"{med(thr_lte) / 1000:.1f} on LTE")
    return t, _row("device_upsell", True, t, left_out, a.device_take_up * t.num_rows, "NR devices sold",
                   f"heavy users (>= {heavy_cut:.0f} MB/day, the base's top {1 - HEAVY_QUANTILE:.0%}) on devices without NR ({how}), "
                   f"with at least {NR_PLACES:.0%} of their sessions at sites whose NR cells have {MIN_NR_SESSIONS}+ sessions "
                   f"and a poor-session share no higher than the network's ({overall:.1%}; {len(good_sites)} sites){gain}; "
                   f"take-up assumed {a.device_take_up:.0%}"), notes


# -- plan upsell ------------------------------------------------------------------------------------------------
def _plan_upsell(m, beh, heavy, good, prices, a: Assumptions):
    notes = ["plan upsell: the lake has no data allowance per plan, so 'near the cap' is read as using at least "
             f"{USAGE_RATIO:g}x the plan's median user's data volume"]
    pr = prices.to_pylist()
    has_tariffs = any(r["monthly_price"] is not None for r in pr)
    price = {r["plan"]: (r["monthly_price"] if has_tariffs else r["median_arpu"]) for r in pr}
    if not has_tariffs:
        notes.append("plan upsell: no tariff table, so each plan's price is its subscribers' median ARPU")
    plan = np.asarray(m["plan"].to_pylist(), dtype=object)
    mb = beh.mb_per_day
    ratio = np.zeros(len(plan))
    nxt_plan = np.full(len(plan), None, dtype=object)
    gain = np.full(len(plan), np.nan)
    ranked = sorted((p for p in price if price[p] is not None), key=lambda p: (price[p], p))
    for p in set(plan.tolist()):
        rows = plan == p
        med = float(np.median(mb[rows]))
        ratio[rows] = mb[rows] / med if med > 0 else 0.0
        higher = [q for q in ranked if price.get(p) is not None and price[q] > price[p]]
        if higher:
            nxt_plan[rows] = higher[0]
            gain[rows] = price[higher[0]] - price[p]
    pick = heavy & good & (ratio >= USAGE_RATIO) & np.isfinite(gain)
    t = m.filter(pa.array(pick)).select(["subscriber_id", "plan", "arpu_monthly", "expected_score", "home_area", "consent_marketing"])
    t = t.append_column("mb_per_day", pa.array(np.round(mb[pick], 1)))
    t = t.append_column("usage_vs_plan_median", pa.array(np.round(ratio[pick], 2)))
    t = t.append_column("next_plan", pa.array(nxt_plan[pick].tolist(), pa.string()))
    t = t.append_column("price_step", pa.array(np.round(gain[pick], 2)))
    t = t.sort_by([("usage_vs_plan_median", "descending"), ("subscriber_id", "ascending")])
    t, left_out = _consenting(t)
    uplift = a.plan_take_up * float(np.sum(t["price_step"].to_numpy(zero_copy_only=False))) if t.num_rows else 0.0
    src = "tariff list prices" if has_tariffs else "plans' median ARPU"
    return t, _row("plan_upsell", True, t, left_out, uplift, "EUR per month",
                   f"heavy users with good experience (network NPS estimate at or above the base's median) using at least "
                   f"{USAGE_RATIO:g}x their plan's median user's volume (no allowance in the data), offered the next dearer plan "
                   f"({src}); take-up assumed {a.plan_take_up:.0%}: uplift = {a.plan_take_up:g} x the sum of the price steps"), notes


# -- retention and win-back ---------------------------------------------------------------------------------------
def _retention(ws: Workspace, as_of: dt.date, consent: pa.Table, a: Assumptions):
    files = churn_files(ws, "retention", as_of)
    if not files:
        t = pa.table({"subscriber_id": pa.array([], pa.string())})
        return t, _row("retention", True, t, 0, None, "EUR", f"not built: {CHURN_NEEDED}", available=False)
    t = pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")
    if "consent_marketing" in t.column_names:
        t = t.drop_columns(["consent_marketing"])
    t = t.append_column("_row", pa.array(np.arange(t.num_rows))).join(consent, "subscriber_id", join_type="left outer")
    t = t.sort_by("_row").drop_columns(["_row"])
    t, left_out = _consenting(t)
    value_col = next((c for c in ("expected_value_saved", "value_saved", "expected_value") if c in t.column_names), None)
    if value_col:
        uplift = float(pc.sum(t[value_col]).as_py() or 0.0)
        how = f"the churn stage's {value_col} summed over the consenting subscribers (its own save-rate assumption)"
    elif {"p_4m", "arpu_monthly"} <= set(t.column_names):
        v = t["p_4m"].to_numpy(zero_copy_only=False) * t["arpu_monthly"].to_numpy(zero_copy_only=False)
        uplift = float(np.nansum(v)) * a.save_rate * a.value_months
        how = (f"P(port-out in 4 months) x ARPU x {a.value_months} months x an assumed save rate of {a.save_rate:.0%}")
    else:
        uplift, how = None, "the churn list carries neither a value nor P(port-out) and ARPU"
    return t, _row("retention", True, t, left_out, uplift, "EUR", f"the churn stage's retention list, consenting subscribers only; {how}")


def _win_back(portouts: pa.Table, m: pa.Table, has_churn: bool, days: int, a: Assumptions):
    t, left_out = _consenting(portouts)
    arpu = float(np.sum(t["arpu_monthly"].to_numpy(zero_copy_only=False))) if t.num_rows else 0.0
    cause = "" if has_churn else "; without churn scores no cause is given for the offer"
    return t, _row("win_back", True, t, left_out, a.win_back_rate * arpu * a.value_months, "EUR",
                   f"subscribers who ported out in the {days} days before the day (port-outs); an assumed {a.win_back_rate:.0%} "
                   f"come back for {a.value_months} months of their ARPU{cause}")


def _write(folder: Path, as_of: dt.date, summary: pa.Table, lists: dict[str, pa.Table]) -> Path:
    marketing = {r["list"] for r in summary.to_pylist() if r["marketing"]}
    for name in marketing:
        t = lists[name]
        if t.num_rows and not pc.all(pc.fill_null(t["consent_marketing"], False)).as_py():
            raise AssertionError(f"marketing list {name} holds a subscriber without marketing consent")
    return write_day(folder, as_of, {"campaigns": summary, **lists}, csv=True)
