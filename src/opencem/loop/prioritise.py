"""Prioritise: candidate fixes from the diagnosed episodes, each with its expected NPS lift from the
twin's what-if, the value of the customers it touches, a cost class and a rank.

A candidate is one action on one set of cells (or one device model): episodes of the same cause on
overlapping cells merge, so a sector congested every evening is one candidate, not fourteen. A transport
candidate covers every cell of its backhaul links (the cells inventory's ``transport_link_id``): the
repair reaches the link's other bands and sites too, whether the episode named them or not. The
expected lift is the what-if's NPS change of the subscribers the scope touched, had the fix been made
``horizon_days`` before the decision: the mean over those days of their NPS with the fix minus without.
The recent days stand for the days after the fix, and a customer's slowly fading memory of a problem
counts as it does after a real fix. A problem not seen in the two days before the decision, and that the
fix replayed on those two days no longer finds, has ended (a crowd event, a one-off outage) and a fix
gains nothing from it.

A problem that was there from the first day (a sector always congested at busy hour, a degraded
backhaul) comes as the twin's chronic episode, found against the cell's peers (docs/twin.md), with the
same evidence, cause and cells as a transient one.

Rank: expected base-NPS lift x value weight (the touched subscribers' mean ARPU over the base's) per
cost unit. Severity, the alternative an operations centre uses, ranks by the largest KPI deviation
(robust z) alone.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..engine import Engine
from ..engine.files import atomic_dir
from ..engine.pipeline import sql_file
from ..twin.run import CHRONIC, load_episodes
from ..twin.whatif import WhatIfEngine, lift_interval, scope_sql
from ..vocabulary import ACTION_FOR_CAUSE, FIX_ACTIONS
from ..workspace import Workspace

ACTION_DETAIL = dict(zip(FIX_ACTIONS, (
    "add a carrier or rebalance load (tilt / power optimisation towards neighbours)",  # add_capacity
    "upgrade or repair the backhaul link (latency and loss)",  # fix_transport
    "hunt and clear the external interferer; adjust the affected carriers",  # clear_interference
    "restore the core / DNS pool and re-route its sites",  # fix_core
    "device campaign: push the firmware fix and notify the model's users",  # fix_device
    "bring the site back on air; check power, RRU and alarms",  # restore_coverage
), strict=True))
# cost class and units (1 unit ~ a day of a field team); the budget is counted in units
COST = dict(zip(FIX_ACTIONS, (
    ("high", 4),  # add_capacity
    ("medium", 2),  # fix_transport
    ("low", 1),  # clear_interference
    ("medium", 2),  # fix_core
    ("low", 1),  # fix_device
    ("medium", 2),  # restore_coverage
), strict=True))
RECENT_DAYS = 7
ENDED_AFTER_DAYS = 2
STILL_THERE = 0.5  # share of the horizon's poor-session gain a fix must still bring on the last days
DEFAULT_BUDGET = 8


@dataclass
class Priorities:
    folder: Path
    as_of: dt.date
    candidates: pa.Table  # one row per candidate fix, by rank
    plans: list[dict]
    comparison: dict  # the same budget spent by our rank and by severity


def merge_episodes(episodes: list[dict]) -> list[dict]:
    """Group network episodes into candidate fixes: same action, overlapping cells (or same device model)."""
    groups: list[dict] = []
    for e in sorted(episodes, key=lambda e: (e["start_time"], e["episode_id"])):
        action = ACTION_FOR_CAUSE.get(e["cause"])
        cells = set(e["cells"] or [])
        if action is None or (action != "fix_device" and not cells):
            continue  # non-network, or nothing to act on
        g = next((g for g in groups if g["action"] == action and (
            g["device_model"] == e["device_model"] if action == "fix_device" else g["cells"] & cells)), None)
        if g is None:
            g = {"action": action, "cause": e["cause"], "cells": set(), "device_model": e["device_model"] if action == "fix_device" else None,
                 "episodes": [], "grids": {}}
            groups.append(g)
        g["cells"] |= cells
        g["episodes"].append(e)
        for grid in e["grid_list"] or []:
            g["grids"][grid] = g["grids"].get(grid, 0) + 1
    return groups


def _days_seen(episodes: list[dict], start: dt.date, end: dt.date) -> int:
    """Distinct days in [start, end) on which any of the episodes was going on."""
    days = set()
    for e in episodes:
        d = max(e["start_time"].date(), start)
        while d < end and d <= (e["end_time"] - dt.timedelta(microseconds=1)).date():
            days.add(d)
            d += dt.timedelta(days=1)
    return len(days)


def _still_there(whatif: WhatIfEngine, g: dict, cells: list[str], w) -> bool:
    """True when the fix, replayed on the last ENDED_AFTER_DAYS days alone, still takes away at least
    STILL_THERE of the poor-session share it takes away over the whole horizon: the problem has not ended."""
    gain = w.kqi_before["poor_share"] - w.kqi_after["poor_share"]
    if gain <= 0:
        return False
    try:
        recent = whatif.run(g["action"], cells=cells or None, device_model=g["device_model"], horizon_days=ENDED_AFTER_DAYS)
    except ValueError:  # no session on the scope in those days
        return False
    return recent.kqi_before["poor_share"] - recent.kqi_after["poor_share"] >= STILL_THERE * gain


def _whole_links(engine: Engine, episode: dict) -> dict:
    """A transport episode with every cell its links carry: the repair of a backhaul link reaches all of
    them, named by the episode or not (its other bands and sites carry the same fault)."""
    if ACTION_FOR_CAUSE.get(episode["cause"]) != "fix_transport" or not episode["cells"]:
        return episode
    cells = engine.query_arrow(sql_file("opencem.loop", "link_cells"), {"cells": list(episode["cells"])}, step="link_cells")
    return {**episode, "cells": cells["cell_id"].to_pylist()}


def prioritise(workspace: Path, as_of: dt.date | None = None, lookback_days: int = 14, budget: int = DEFAULT_BUDGET,
               progress: Callable[[str, int, int], None] | None = None, horizon_days: int = RECENT_DAYS) -> Priorities:
    """Candidate fixes as of ``as_of`` (default: the day after the data) from the twin's episodes of the
    ``lookback_days`` before it; writes WS/loop/prioritise/{candidates.parquet,
    plans.json, fix_requests.json, comparison.json}."""
    ws = Workspace(workspace)
    episodes = load_episodes(ws.root)
    tick = progress or (lambda _m, _d, _t: None)
    with ws.session() as engine:
        last = engine.query_row(sql_file("opencem.loop", "session_days"), step="session_days")[1]
        as_of = as_of or last + dt.timedelta(days=1)
        start = as_of - dt.timedelta(days=lookback_days)
        recent = as_of - dt.timedelta(days=RECENT_DAYS)
        rows = [e for e in episodes.to_pylist() if e["end_time"].date() >= start and e["start_time"].date() < as_of]
        groups = merge_episodes([_whole_links(engine, e) for e in rows])
        base_n, base_arpu = engine.query_row(sql_file("opencem.loop", "base_value"), {"start": start, "end": as_of}, step="base_value")
    out = []
    with WhatIfEngine(ws.root, start, as_of) as whatif:
        for i, g in enumerate(groups):
            tick(f"what-if {g['action']} ({i + 1}/{len(groups)})", i, len(groups))
            cells = sorted(g["cells"])
            try:
                w = whatif.run(g["action"], cells=cells or None, device_model=g["device_model"], horizon_days=horizon_days)
            except ValueError:  # no sessions on the scope in the look-back: nothing a fix would gain
                continue
            arpu = _touched_revenue(whatif.engine, whatif.window, cells, g["device_model"])
            persistence = _days_seen(g["episodes"], recent, as_of) / RECENT_DAYS
            cost_class, units = COST[g["action"]]
            # a problem not seen in the last ENDED_AFTER_DAYS days has ended (a crowd event, a one-off outage):
            # fixing it gains nothing (episodes of a device model cover whole days, hence two), unless
            # the sessions of those days say it is still there, which an episode that has become the
            # grid's or model's normal no longer shows
            # a chronic episode is a standing condition of its cells (hot or slow at those hours on most days):
            # seen in the last week, it is there until fixed, whatever hours its last days flagged
            chronic = any((e["main_signal"] or "").startswith(CHRONIC) for e in g["episodes"])
            ongoing = (chronic and persistence > 0 or _days_seen(g["episodes"], as_of - dt.timedelta(days=ENDED_AFTER_DAYS), as_of) > 0
                       or _still_there(whatif, g, cells, w))
            lift = max(w.nps_lift, 0.0) if ongoing else 0.0
            base_lift = lift * w.subscribers / base_n
            # the model's error on the lift: each bootstrap replica's, under the same rules (0 for an ended problem)
            replicas = np.maximum(np.asarray(w.replica_lifts), 0.0) * ongoing
            low, high = (max(v, 0.0) for v in lift_interval(lift, replicas))
            value_weight = (arpu / w.subscribers) / base_arpu if w.subscribers else 0.0
            ep = g["episodes"]
            main = max(ep, key=lambda e: (e["affected_subscribers"], e["episode_id"]))
            out.append({
                "cause": g["cause"], "action": g["action"], "detail": ACTION_DETAIL[g["action"]],
                "target": g["device_model"] if g["device_model"] else ";".join(cells), "cells": cells, "device_model": g["device_model"],
                "grid": max(g["grids"], key=lambda k: (g["grids"][k], k)) if g["grids"] else None,
                "grids": sorted(g["grids"]), "center_lat": main["center_lat"], "center_lon": main["center_lon"],
                "episodes": [e["episode_id"] for e in ep], "first_seen": min(e["start_time"] for e in ep),
                "last_seen": max(e["end_time"] for e in ep), "days_seen_last_week": int(round(persistence * RECENT_DAYS)),
                "persistence": round(persistence, 3), "evidence": main["evidence"],
                "severity_z": float(max(e["max_z"] for e in ep)), "poor_sessions": int(sum(e["poor_sessions"] for e in ep)),
                "subscribers": w.subscribers, "revenue": round(float(arpu), 2), "value_weight": round(value_weight, 3),
                "whatif_nps_lift": round(w.nps_lift, 3), "expected_nps_lift": round(lift, 3),
                "expected_nps_lift_low": round(low, 3), "expected_nps_lift_high": round(high, 3),
                "expected_base_nps_lift": round(base_lift, 4),
                "expected_base_nps_lift_replicas": [round(float(v) * w.subscribers / base_n, 5) for v in replicas],
                "cei_change": round(w.cei_change, 3),
                "poor_share_before": round(w.kqi_before["poor_share"], 4), "poor_share_after": round(w.kqi_after["poor_share"], 4),
                "cost_class": cost_class, "cost_units": units, "score": base_lift * value_weight / units,
            })
    tick("ranked", len(groups), len(groups))
    table = _ranked(out)
    picks = {"ours": _spend(table, "rank", budget, worth="expected_base_nps_lift"), "severity": _spend(table, "severity_rank", budget)}
    comparison = {"budget_units": budget, **{k: {"fixes": [table["fix_id"][i].as_py() for i in v], **_expected_gain(table, v)}
                                             for k, v in picks.items()}}
    plans = build_plans(table, as_of)
    requests = [{"fix_id": r["fix_id"], "action": r["action"], "cells": r["cells"], "device_model": r["device_model"]}
                for r in table.take(picks["ours"]).to_pylist()]
    folder = ws.loop / "prioritise"
    with atomic_dir(folder) as tmp:
        tmp.mkdir()
        pq.write_table(table, tmp / "candidates.parquet")
        (tmp / "plans.json").write_text(json.dumps(plans, indent=1, default=str))
        (tmp / "fix_requests.json").write_text(json.dumps(requests, indent=1))
        (tmp / "comparison.json").write_text(json.dumps({"as_of": str(as_of), **comparison}, indent=1))
    return Priorities(folder, as_of, table, plans, comparison)


def _expected_gain(table: pa.Table, rows: list[int]) -> dict:
    """The base-NPS gain expected of the fixes ``rows``, and its 95 % interval for the model's error: the
    sum by each bootstrap replica (one replica's sensitivity is shared by every fix it predicts)."""
    if not rows:
        return {"expected_base_nps_lift": 0.0, "expected_base_nps_lift_low": 0.0, "expected_base_nps_lift_high": 0.0}
    gain = float(np.sum(table["expected_base_nps_lift"].to_numpy()[rows]))
    replicas = np.sum([table["expected_base_nps_lift_replicas"][i].as_py() for i in rows], axis=0)
    low, high = lift_interval(gain, np.atleast_1d(replicas))
    return {"expected_base_nps_lift": round(gain, 4), "expected_base_nps_lift_low": round(max(low, 0.0), 4),
            "expected_base_nps_lift_high": round(max(high, 0.0), 4)}


def _touched_revenue(engine: Engine, window: dict, cells: list[str], device_model: str | None) -> float:
    """The monthly revenue of the subscribers with sessions in the fix's scope in the what-if's window."""
    scope, scope_params = scope_sql(cells, device_model)
    sql = sql_file("opencem.loop", "touched_revenue").format(scope=scope)
    return float(engine.query_row(sql, {**window, **scope_params}, step="touched_revenue")[0])


def _ranked(rows: list[dict]) -> pa.Table:
    """Rank by value-weighted lift per cost unit and, for comparison, by severity; ids follow our rank."""
    rows = sorted(rows, key=lambda r: (-r["score"], -r["severity_z"], r["target"]))
    sev = sorted(range(len(rows)), key=lambda i: (-rows[i]["severity_z"], -rows[i]["poor_sessions"], rows[i]["target"]))
    for i, r in enumerate(rows):
        r["rank"], r["fix_id"] = i + 1, f"C{i + 1:03d}"
        r["score"] = round(r["score"], 6)
    for k, i in enumerate(sev):
        rows[i]["severity_rank"] = k + 1
    first = ["rank", "fix_id", "severity_rank"]
    return pa.Table.from_pylist([{k: r[k] for k in first + [k for k in r if k not in first]} for r in rows]) if rows else pa.table({})


def _spend(table: pa.Table, order: str, budget: int, worth: str | None = None) -> list[int]:
    """Row indices bought in ``order`` until the budget (cost units) runs out; a fix that does not fit is passed
    over, and so is one whose column ``worth`` (its expected gain) is not above 0: a field team's day is not
    spent on a fix expected to change nothing."""
    if table.num_rows == 0:
        return []
    idx = np.argsort(table[order].to_numpy(), kind="stable")
    cost, left, out = table["cost_units"].to_numpy(), budget, []
    gain = table[worth].to_numpy() if worth else np.ones(table.num_rows)
    for i in idx:
        if cost[i] <= left and gain[i] > 0:
            out.append(int(i))
            left -= cost[i]
    return out


def priority_class(rank: int) -> str:
    return "critical" if rank <= 2 else "high" if rank <= 5 else "medium" if rank <= 10 else "low"


def severity_class(z: float) -> str:
    return "critical" if z >= 40 else "major" if z >= 15 else "minor"


def build_plans(table: pa.Table, as_of: dt.date) -> list[dict]:
    """One optimisation plan per grid (device campaigns: one per model), its actions in rank order."""
    plans: dict[str, dict] = {}
    for r in table.to_pylist():
        key = r["grid"] or f"device-{r['device_model']}".replace(" ", "-")
        p = plans.get(key)
        if p is None:
            p = plans[key] = {
                "plan_id": f"PLAN-{as_of}-{key}", "created": str(as_of), "grid": r["grid"] or "",
                "center_lat": r["center_lat"], "center_lon": r["center_lon"], "problem": r["cause"],
                "title": f"{r['cause'].replace('_', ' ')} on {r['target'].split(';')[0]}" + (" and neighbours" if len(r["cells"]) > 1 else ""),
                "description": (f"{r['cause'].replace('_', ' ')} seen on {r['days_seen_last_week']} of the last {RECENT_DAYS} days "
                                f"({len(r['episodes'])} episodes since {r['first_seen']:%Y-%m-%d}); {r['subscribers']} subscribers touched"),
                "evidence": r["evidence"], "episodes": [], "cells": [], "device_model": r["device_model"], "actions": [],
                "subscribers_affected": 0, "revenue_at_stake": 0.0, "priority_rank": r["rank"],
                "priority": priority_class(r["rank"]), "severity": severity_class(r["severity_z"]),
            }
        p["episodes"] += r["episodes"]
        p["cells"] = sorted(set(p["cells"]) | set(r["cells"]))
        p["actions"].append({"fix_id": r["fix_id"], "action": r["action"], "detail": r["detail"], "cost_class": r["cost_class"],
                             "expected_nps_lift": r["expected_nps_lift"], "expected_base_nps_lift": r["expected_base_nps_lift"]})
        p["subscribers_affected"] += r["subscribers"]
        p["revenue_at_stake"] = round(p["revenue_at_stake"] + r["revenue"], 2)
    return sorted(plans.values(), key=lambda p: p["priority_rank"])
