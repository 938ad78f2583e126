"""Injected faults, scheduled fixes and the cell load they shape (the ground truth of 'why')."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..vocabulary import CAUSE_OF_ACTION
from .city import LAYERS, City
from .radio import LAYER_NAMES

SLOTS_PER_DAY = 96
MIN_PER_DAY = 1440

WEEKDAY_PROFILE = np.array([.12, .08, .06, .05, .06, .12, .30, .55, .70, .65, .65, .70,
                            .80, .75, .70, .70, .75, .85, .90, .95, 1.0, 1.0, .85, .50])
WEEKEND_PROFILE = np.array([.20, .14, .10, .07, .06, .08, .14, .25, .40, .55, .65, .75,
                            .80, .80, .80, .80, .80, .85, .90, .95, 1.0, .95, .80, .50])
HIGHWAY_PROFILE = np.array([.05, .03, .03, .03, .08, .30, .70, 1.0, .90, .50, .40, .45,
                            .50, .45, .45, .55, .80, 1.0, .90, .55, .40, .30, .20, .10])
# busy-hour PRB utilisation by (area, band) before per-cell variation
BASE_LOAD = {("core", "B3"): .62, ("core", "n78"): .40, ("suburb", "B20"): .55,
             ("suburb", "B3"): .50, ("suburb", "n78"): .35, ("highway", "B20"): .50}


@dataclass
class Fault:
    fault_id: str
    cause: str
    start_min: int  # minutes from the start of the window
    end_min: int
    cells: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))
    sites: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))
    center_xy: tuple[float, float] = (0.0, 0.0)
    radius_m: float = 0.0
    detail: str = ""
    params: dict = field(default_factory=dict)
    fixed_by: str | None = None


@dataclass
class Fix:
    fix_id: str
    action: str  # add_carrier | repair_backhaul, or a requested action (FIX_ACTIONS)
    day: int
    fault_id: str  # "" when the fix matched no fault (it changes nothing)
    target: str
    cells: np.ndarray  # cells whose sessions the fix touches
    new_cell: int = -1
    device_model: str | None = None  # a device campaign touches that model's sessions instead
    unfixed_end_min: int = 0  # when the fault would have ended without the fix


# what a requested fix repairs: a fault of this cause on the cells (or device model) it names
FIX_ACTIONS = CAUSE_OF_ACTION  # action -> the cause it repairs


@dataclass(frozen=True)
class FixRequest:
    """A fix asked of the operator's field teams: an action on cells or on a device model."""
    fix_id: str
    action: str
    cells: tuple[str, ...] = ()
    device_model: str | None = None


@dataclass
class Schedule:
    faults: list[Fault]
    fixes: list[Fix]
    demand: np.ndarray  # (cells, slots) offered load relative to capacity
    load: np.ndarray  # (cells, slots) PRB utilisation actually seen, with fixes
    load_without_fix: dict[str, np.ndarray]  # fix_id -> (cells, slots) utilisation had it not been done
    weekend: np.ndarray  # (days,) bool

    def by_cause(self, cause: str) -> list[Fault]:
        return [f for f in self.faults if f.cause == cause]


def load_requests(path) -> tuple[FixRequest, ...]:
    """Fix requests from a JSON list of {fix_id, action, cells, device_model}."""
    rows = json.loads(Path(path).read_text())
    out = []
    for i, r in enumerate(rows):
        missing = {"fix_id", "action"} - set(r)
        if missing:
            raise InputError(f"{path}: fix {i + 1} lacks {', '.join(sorted(missing))}")
        out.append(FixRequest(str(r["fix_id"]), str(r["action"]), tuple(r.get("cells") or ()), r.get("device_model")))
    return tuple(out)


def _pick_sites(rng, city: City, area: tuple[str, ...], n: int, taken: set[int]) -> list[int]:
    cand = [s for s in np.flatnonzero(np.isin(city.site_area, area)) if s not in taken]
    # keep faults apart so their footprints do not overlap
    chosen: list[int] = []
    for s in rng.permutation(cand) if n > 0 else []:
        if all(np.hypot(*(city.site_xy[s] - city.site_xy[t])) > 1200 for t in (*taken, *chosen)):
            chosen.append(int(s))
        if len(chosen) == n:
            break
    taken.update(chosen)
    return chosen


def _window(rng, days: int, min_h: float, max_h: float, evening: bool = False) -> tuple[int, int]:
    day = int(rng.integers(0, days))
    start_h = rng.uniform(17, 20) if evening else rng.uniform(6, 20)
    dur = rng.uniform(min_h, max_h)
    start = int(day * MIN_PER_DAY + start_h * 60)
    return start, min(int(start + dur * 60), days * MIN_PER_DAY)


def plan(city: City, days: int, start_weekday: int, rng: np.random.Generator, with_fixes: bool = True,
         fix_day: int | None = None, requests: tuple[FixRequest, ...] = ()) -> Schedule:
    """Choose faults of every cause, the fixes (on `fix_day`, default 60 % into the window), and
    compute every cell's load per 15 min. `requests` replace the scenario's own two fixes."""
    end = days * MIN_PER_DAY
    fix_day = max(2, int(round(days * 0.6))) if fix_day is None else fix_day
    faults: list[Fault] = []
    taken: set[int] = set()
    n_short = max(1, days // 7)

    # Coverage: a suburban site off air (power / RRU failure) for hours to two days; in the dense
    # core neighbours would cover for it, in the suburbs it leaves a hole.
    for s in _pick_sites(rng, city, ("suburb",), n_short, taken):
        a, b = _window(rng, days, 4, 48)
        cells = np.flatnonzero(city.cells["site"] == s)
        faults.append(Fault("", "coverage", a, b, cells, np.array([s]), tuple(city.site_xy[s]), 900,
                            f"site S{s:04d} off air", {"atten_db": 40.0}))
    # Interference: an external interferer on B3 near a site.
    for s in _pick_sites(rng, city, ("core", "suburb"), n_short, taken):
        a, b = _window(rng, days, 6, 72)
        xy = city.site_xy[s] + rng.normal(0, 120, 2)
        cells = np.flatnonzero((city.cells["site"] == s) & (city.cells["band"] == "B3"))
        faults.append(Fault("", "interference", a, b, cells, np.array([s]), tuple(xy), 900,
                            f"external interferer on B3 near site S{s:04d}", {"level_dbm": -98.0, "band": "B3"}))
    # Congestion: a persistent under-dimensioned sector (fixed by a carrier) and evening events.
    # a long window's short faults can take every core site kept apart; the sector may then share one's place
    s = (_pick_sites(rng, city, ("core",), 1, taken) or _pick_sites(rng, city, ("core",), 1, set()))[0]
    taken.add(s)
    sector = int(rng.integers(0, 3))
    cell = int(city.cell_of[s, sector, LAYER_NAMES.index("B3")])
    faults.append(Fault("", "congestion", 0, end, np.array([cell]), np.array([s]), tuple(city.site_xy[s]), 400,
                        f"busy-hour congestion on {city.cells['cell_id'][cell]}", {"demand_factor": 1.75}))
    for s in _pick_sites(rng, city, ("core", "suburb"), max(0, days // 14), taken):
        a, b = _window(rng, days, 3, 5, evening=True)
        cells = np.flatnonzero(city.cells["site"] == s)
        faults.append(Fault("", "congestion", a, b, cells, np.array([s]), tuple(city.site_xy[s]), 600,
                            f"crowd event at site S{s:04d}", {"demand_factor": 2.3}))
    # Transport: a degraded microwave backhaul link (persistent, repaired by a fix) and short outages.
    links = [l for l in np.unique(city.site_link) if l.startswith("TL-M")]
    n_links = 0
    for link in rng.permutation(links):
        sites = np.flatnonzero(city.site_link == link)
        near = [t for t in taken if np.hypot(*(city.site_xy[sites] - city.site_xy[t]).T).min() < 1200]
        if near or n_links > days // 14:
            continue
        taken.update(sites.tolist())
        a, b = (0, end) if n_links == 0 else _window(rng, days, 2, 12)
        n_links += 1
        cells = np.flatnonzero(np.isin(city.cells["site"], sites))
        faults.append(Fault("", "transport", a, b, cells, sites, tuple(city.site_xy[sites].mean(0)), 1500,
                            f"backhaul {link} degraded (latency and loss)",
                            {"link": link, "extra_rtt_ms": 110.0, "loss_pct": 2.5, "thr_factor": 0.45}))
    # Core / DNS: one of the two DNS pools fails for a few hours.
    for _ in range(max(1, days // 10)):
        pool = int(rng.integers(0, 2))
        a, b = _window(rng, days, 2, 6)
        sites = np.flatnonzero(city.site_core_pool == pool)
        faults.append(Fault("", "core_dns", a, b, np.flatnonzero(np.isin(city.cells["site"], sites)), sites,
                            tuple(city.site_xy[sites].mean(0)), 6000,
                            f"DNS pool {('west', 'east')[pool]} failing", {"pool": pool, "fail_prob": 0.55}))
    # Device: a firmware release breaks one 5G model from a third of the window on.
    a = int(days // 3) * MIN_PER_DAY
    faults.append(Fault("", "device", a, end, detail="firmware 4.2 on Nova X5 drops calls and slows NR",
                        params={"model": "Nova X5", "drop_prob": 0.09, "nr_thr_factor": 0.5}))
    faults.sort(key=lambda f: (f.start_min, f.cause))
    for i, f in enumerate(faults):
        f.fault_id = f"F{i + 1:03d}"

    fixes: list[Fix] = []
    if requests:
        fixes = [_requested_fix(city, faults, r, fix_day) for r in requests]
    elif with_fixes:
        cong = next(f for f in faults if f.cause == "congestion" and f.start_min == 0)
        site, c = int(cong.sites[0]), int(cong.cells[0])
        new = city.add_cell(site, int(city.cells["sector"][c]), "B7", fix_day)
        fixes.append(Fix("X1", "add_carrier", fix_day, cong.fault_id, city.cells["cell_id"][c], np.array([c, new]), new))
        tr = next((f for f in faults if f.cause == "transport" and f.start_min == 0), None)
        if tr is not None:
            fixes.append(Fix("X2", "repair_backhaul", fix_day, tr.fault_id, tr.params["link"], tr.cells))
    # demand is drawn before the fixes shorten the faults, so a world without a fix keeps its load
    weekend = (start_weekday + np.arange(days)) % 7 >= 5
    demand = _demand(city, days, weekend, faults, rng)
    unfixed = {f.fault_id: f.end_min for f in faults}
    for fx in fixes:
        f = next((f for f in faults if f.fault_id == fx.fault_id), None)
        if f is not None:
            fx.unfixed_end_min = f.end_min
            f.end_min, f.fixed_by = max(f.start_min, min(f.end_min, fix_day * MIN_PER_DAY)), fx.fix_id
    load, load_without = _load(city, demand, fixes, faults, unfixed)
    return Schedule(faults, fixes, demand, load, load_without, weekend)


def _requested_fix(city: City, faults: list[Fault], r: FixRequest, day: int) -> Fix:
    """The fault a requested fix repairs: same cause, begun before `day` and still going on it, on the
    cells (or device model) named; a request that matches none is still carried out and changes nothing
    (a fault that begins later is not repaired in advance)."""
    if r.action not in FIX_ACTIONS:
        raise InputError(f"fix {r.fix_id}: unknown action '{r.action}'; choose one of {', '.join(FIX_ACTIONS)}")
    index = {c: i for i, c in enumerate(city.cells["cell_id"])}
    unknown = [c for c in r.cells if c not in index]
    if unknown:
        raise InputError(f"fix {r.fix_id}: unknown cell {unknown[0]}")
    cells = np.array(sorted(index[c] for c in r.cells), dtype=np.int64)
    cause = FIX_ACTIONS[r.action]
    match = next((f for f in faults if f.cause == cause and f.fixed_by is None and f.start_min < day * MIN_PER_DAY < f.end_min
                  and (f.params.get("model") == r.device_model if cause == "device" else np.isin(cells, f.cells).any())), None)
    if match is not None:
        match.fixed_by = r.fix_id  # claimed, so a second request for the same fault repairs nothing more
        # the repair ends the whole fault, on every cell of it (a backhaul link serves all its sites'
        # cells), so the truth's world without the fix must undo it on all of them, not only those named
        cells = np.union1d(cells, match.cells) if cause != "device" else cells
    target = r.device_model if cause == "device" else ";".join(r.cells)
    return Fix(r.fix_id, r.action, day, match.fault_id if match else "", target, cells, device_model=r.device_model)


def _demand(city: City, days: int, weekend: np.ndarray, faults: list[Fault], rng) -> np.ndarray:
    c = city.cells
    n_cells = len(c["cell_id"])
    hour = np.arange(days * SLOTS_PER_DAY) // 4 % 24
    is_weekend = np.repeat(weekend, SLOTS_PER_DAY)
    profile = np.where(is_weekend, WEEKEND_PROFILE[hour], WEEKDAY_PROFILE[hour])
    hw = HIGHWAY_PROFILE[hour] * np.where(is_weekend, 0.6, 1.0)
    base = np.array([BASE_LOAD.get((a, b), 0.4) for a, b in zip(c["area_type"], c["band"])])
    base = base * rng.lognormal(0, 0.22, n_cells)
    shape = np.where((c["area_type"] == "highway")[:, None], hw[None, :], profile[None, :])
    # slowly varying multiplicative noise (AR(1) over 15-minute slots)
    eps = rng.normal(0, 0.05, (n_cells, days * SLOTS_PER_DAY))
    noise = np.empty_like(eps)
    noise[:, 0] = eps[:, 0]
    for t in range(1, eps.shape[1]):
        noise[:, t] = 0.8 * noise[:, t - 1] + eps[:, t]
    demand = base[:, None] * shape * np.exp(noise)
    for f in faults:
        if f.cause == "congestion":
            a, b = f.start_min // 15, f.end_min // 15
            demand[f.cells, a:b] *= f.params["demand_factor"]
    return demand.astype(np.float32)


def _load(city: City, demand: np.ndarray, fixes: list[Fix], faults: list[Fault], unfixed: dict[str, int]):
    """Utilisation from demand; a carrier fix splits the sector's LTE demand over both carriers, an
    added capacity takes the congestion's extra demand off from the fix on."""
    load = np.clip(demand, 0.02, 0.98)
    without: dict[str, np.ndarray] = {}
    by_id = {f.fault_id: f for f in faults}
    for fx in fixes:
        f = by_id.get(fx.fault_id)
        if fx.action == "add_capacity" and f is not None:
            a, b = f.end_min // 15, unfixed[f.fault_id] // 15
            without[fx.fix_id] = load.copy()
            load[f.cells, a:b] = np.clip(demand[f.cells, a:b] / f.params["demand_factor"], 0.02, 0.98)
        if fx.action != "add_carrier":
            continue
        old, new = fx.cells
        a = fx.day * SLOTS_PER_DAY
        without[fx.fix_id] = load.copy()
        p_old = LAYERS[city.cells["band"][old]][3]
        p_new = LAYERS[city.cells["band"][new]][3]
        split = np.clip(demand[old, a:] * p_old / (p_old + p_new) * 1.05, 0.02, 0.98)
        load[old, a:] = split
        load[new, a:] = split
        load[new, :a] = 0.0
        without[fx.fix_id][new, :] = 0.0
    for f in faults:  # a sector off air carries nothing
        if f.cause == "coverage":
            load[f.cells, f.start_min // 15: f.end_min // 15] = 0.0
            for w in without.values():
                w[f.cells, f.start_min // 15: f.end_min // 15] = 0.0
    return load.astype(np.float32), {k: v.astype(np.float32) for k, v in without.items()}
