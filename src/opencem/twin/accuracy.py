"""Score a diagnosis against the synthetic operator's injected faults (its hidden truth).

An area episode matches a fault when they overlap in time (an hour of slack either side) and in
place: a hexagon of the episode lies within the fault's radius (+300 m) of its centre, or within
800 m of a site whose cells the fault touched. A device episode matches a device fault of the same
model that overlaps it in time. Precision counts matched episodes, recall matched faults. The root
cause is scored twice: on matched episodes (against the nearest matching fault), and once per fault
(the cause of the matching episode present for most of the fault's hours, then the largest; a missed
fault counts as wrong), per cause class too. The localisation error is the distance from a fault's
centre to the centre of that episode. A fault that began before the window is persistent.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import h3
import numpy as np
import pyarrow.parquet as pq

from ..vocabulary import CAUSES

SLACK_H = np.timedelta64(1, "h")
EARTH_M = 6_371_000.0


def _dist_m(lat1, lon1, lat2, lon2):
    p1, p2, dl = np.radians(lat1), np.radians(lat2), np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_M * np.arcsin(np.sqrt(a))


def load_faults(truth: Path, cells_table) -> list[dict]:
    site = {c: (a, b) for c, a, b in zip(*(cells_table[k].to_pylist() for k in ("cell_id", "lat", "lon")))}
    faults = pq.read_table(Path(truth) / "faults.parquet").to_pylist()
    for f in faults:
        pts = {site[c] for c in (f["cells"] or "").split(";") if c in site}
        f["sites"] = np.array(sorted(pts)) if pts else np.zeros((0, 2))
    return faults


def _overlaps(ep: dict, f: dict, hours: dict | None = None) -> bool:
    a, b = np.datetime64(ep["start_time"]), np.datetime64(ep["end_time"])
    if b < np.datetime64(f["start_time"]) - SLACK_H or a > np.datetime64(f["end_time"]) + SLACK_H:
        return False
    # an episode's own hours, where known: a chronic episode spans the window but is there only at its busy hours
    h = (hours or {}).get(ep["episode_id"])
    if h is not None and not ((h + np.timedelta64(1, "h") >= np.datetime64(f["start_time"]) - SLACK_H)
                              & (h <= np.datetime64(f["end_time"]) + SLACK_H)).any():
        return False
    if ep["kind"] == "device" or f["cause"] == "device":
        return ep["kind"] == "device" and f["cause"] == "device" and ep["device_model"] == f["device_model"]
    ll = np.array([h3.cell_to_latlng(g) for g in ep["grid_list"]])
    if (_dist_m(ll[:, 0], ll[:, 1], f["center_lat"], f["center_lon"]) < f["radius_m"] + 300).any():
        return True
    if len(f["sites"]):
        d = _dist_m(ll[:, None, 0], ll[:, None, 1], f["sites"][None, :, 0], f["sites"][None, :, 1])
        return bool((d < 800).any())
    return False


def _hours_during(ep: dict, f: dict, hours: dict | None) -> int:
    """Hours of the episode inside the fault's span (with the slack): its own grid-hours where known, else its span."""
    a, b = np.datetime64(f["start_time"]) - SLACK_H, np.datetime64(f["end_time"]) + SLACK_H
    h = (hours or {}).get(ep["episode_id"])
    if h is None:
        lo, hi = max(np.datetime64(ep["start_time"]), a), min(np.datetime64(ep["end_time"]), b)
        return max(0, int((hi - lo) / np.timedelta64(1, "h")))
    return len(np.unique(h[(h + np.timedelta64(1, "h") >= a) & (h <= b)]))


def evaluate(episodes, faults: list[dict], start, end, units=None) -> dict:
    """Precision, recall, cause confusion and localisation error of ``episodes`` against ``faults``
    active in [start, end). With ``units`` (episode_units: episode_id, hour) an area episode overlaps a
    fault in time only through its own grid-hours."""
    hours = None
    if units is not None:
        per = units.group_by("episode_id").aggregate([("hour", "list")])
        hours = {e: np.array(h, dtype="datetime64[us]") for e, h in zip(per["episode_id"].to_pylist(), per["hour_list"].to_pylist())}
    faults = [f for f in faults if np.datetime64(f["start_time"]) < np.datetime64(end)
              and np.datetime64(f["end_time"]) > np.datetime64(start)]
    eps = episodes.to_pylist()
    matches = {e["episode_id"]: [f for f in faults if _overlaps(e, f, hours)] for e in eps}
    found = {f["fault_id"] for fs in matches.values() for f in fs}
    confusion: Counter = Counter()
    for e in eps:
        fs = matches[e["episode_id"]]
        if not fs:
            continue
        if e["center_lat"] is not None and len(fs) > 1:
            fs = sorted(fs, key=lambda f: _dist_m(e["center_lat"], e["center_lon"], f["center_lat"] or 0, f["center_lon"] or 0))
        confusion[(fs[0]["cause"], e["cause"])] += 1
    loc, per_fault = [], []
    for f in faults:
        # the fault as an operator meets it: the matching episode there for most of the fault's hours (then the
        # largest) names the cause and the place; a city-wide failure of one afternoon does not stand for a
        # sector congested every evening
        best = max((e for e in eps if f in matches[e["episode_id"]]), key=lambda e: (_hours_during(e, f, hours), e["affected_subscribers"]),
                   default=None)
        row = {"fault_id": f["fault_id"], "cause": f["cause"], "found": best is not None,
               "diagnosed": best["cause"] if best is not None else None,
               "persistent": bool(np.datetime64(f["start_time"]) <= np.datetime64(start)), "localisation_m": None}
        # a device has no place; a DNS pool is half the city
        if best is not None and f["cause"] not in ("device", "core_dns") and best["center_lat"] is not None:
            row["localisation_m"] = float(_dist_m(best["center_lat"], best["center_lon"], f["center_lat"], f["center_lon"]))
            loc.append(row["localisation_m"])
        per_fault.append(row)
    by_cause = {c: {"faults": sum(r["cause"] == c for r in per_fault), "found": sum(r["found"] for r in per_fault if r["cause"] == c),
                    "cause_right": sum(r["diagnosed"] == c for r in per_fault if r["cause"] == c)}
                for c in sorted({r["cause"] for r in per_fault})}
    right = sum(n for (t, p), n in confusion.items() if t == p)
    matched = sum(1 for fs in matches.values() if fs)
    return {
        "episodes": len(eps), "matched_episodes": matched, "precision": matched / len(eps) if eps else None,
        "faults": len(faults), "faults_found": len(found), "recall": len(found) / len(faults) if faults else None,
        "missed": sorted(f"{f['fault_id']} {f['cause']}" for f in faults if f["fault_id"] not in found),
        "cause_right": right / sum(confusion.values()) if confusion else None,
        "fault_cause_right": sum(r["diagnosed"] == r["cause"] for r in per_fault) / len(per_fault) if per_fault else None,
        "persistent_faults": sum(r["persistent"] for r in per_fault),
        "persistent_found": sum(r["found"] for r in per_fault if r["persistent"]),
        "by_cause": by_cause, "per_fault": per_fault,
        "confusion": {f"{t}->{p}": n for (t, p), n in sorted(confusion.items())},
        "localisation_m_median": float(np.median(loc)) if loc else None,
        "localisation_m_p90": float(np.percentile(loc, 90)) if loc else None,
        "localised_faults": len(loc),
    }


def confusion_matrix(confusion: dict) -> list[list]:
    """Rows true cause, columns diagnosed cause (CAUSES order), from evaluate()'s confusion dict."""
    m = [[0] * len(CAUSES) for _ in CAUSES[:-1]]
    for k, n in confusion.items():
        t, p = k.split("->")
        m[CAUSES.index(t)][CAUSES.index(p)] += n
    return m
