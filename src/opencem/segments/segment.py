"""`opencem segments`: the scored base cut by value x experience, behaviour, mobility, device and place, each
segment with its size, network NPS, churn risk and ARPU.

Reads the NPS stage's scores of the as-of day (required) and the churn stage's (when present); writes
``WS/segments/segments/as_of=D/`` with ``segments.parquet`` (one row per dimension and segment) and
``members.parquet`` (each subscriber's segment in every dimension).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..engine.pipeline import sql_file
from ..workspace import Workspace
from . import cluster as clustering
from .common import CHURN_NEEDED, WINDOW_DAYS, load_base, load_behaviour, resolve_as_of, write_day

UNKNOWN = "unknown"
# the dimensions, in the order they are shown, and what cuts them
DIMENSIONS = {
    "value_experience": "ARPU against the network NPS estimate (expected 0-10 answer), split at the base's medians",
    "behaviour": "k-means on service mix, time of day, data volume and mobility (standardised), named from the centre",
    "mobility": (f"commuter: weekday day place (09-17) at least {clustering.COMMUTE_KM:g} km from the night place (21-06); "
                 f"on the move: radius of gyration of located reports at least {clustering.ROAMING_KM:g} km; else home-based"),
    "device_capability": "the device's capability label (the operator's own)",
    "device_vendor": "the device's vendor",
    "district": "the billing address's district (home_area)",
    "grid": "the H3 cell of the subscriber's main place (the NPS stage's grid)",
}


def quadrant_label(value: str, experience: str) -> str:
    """The value x experience segment of ``value`` (high / low) and ``experience`` (good / poor)."""
    return f"{value} value, {experience} experience"


@dataclass
class SegmentResult:
    as_of: dt.date
    segments: pa.Table
    members: pa.Table
    thresholds: dict
    has_churn: bool
    folder: Path
    notes: list[str] = field(default_factory=list)


def segment(workspace: Path, as_of: dt.date | None = None, clusters: int = clustering.CLUSTERS, timezone: str = "UTC",
            window_days: int = WINDOW_DAYS, progress: Callable[[str], None] | None = None) -> SegmentResult:
    say = progress or (lambda _m: None)
    ws = Workspace(workspace)
    as_of = resolve_as_of(ws, as_of)
    with ws.session() as engine:
        say(f"the base scored as of {as_of}")
        base = load_base(engine, ws, as_of)
        m = base.members
        ids = m["subscriber_id"].to_numpy(zero_copy_only=False).astype(object)
        say("behaviour: service mix, time of day, places")
        beh = load_behaviour(engine, ids, as_of, timezone, window_days)
        say("clusters")
        cl = clustering.cluster(beh, clusters)
        arpu = m["arpu_monthly"].to_numpy(zero_copy_only=False).astype(float)
        score = m["expected_score"].to_numpy(zero_copy_only=False).astype(float)
        arpu_cut, score_cut = float(np.median(arpu)), float(np.median(score))
        quadrant = np.array([quadrant_label("high" if a >= arpu_cut else "low", "good" if s >= score_cut else "poor")
                             for a, s in zip(arpu, score)], dtype=object)
        labels = {
            "value_experience": quadrant,
            "behaviour": cl.labels,
            "mobility": clustering.mobility_class(beh),
            "device_capability": _filled(m["device_capability"]),
            "device_vendor": _filled(m["device_vendor"]),
            "district": _filled(m["home_area"]),
            "grid": _filled(m["grid"]),
        }
        long = pa.table({
            "dimension": pa.array(np.repeat(list(labels), len(ids)).tolist(), pa.string()),
            "segment": pa.array(np.concatenate([v for v in labels.values()]).tolist(), pa.string()),
            "subscriber_id": pa.array(np.tile(ids, len(labels)).tolist(), pa.string()),
        })
        engine.register_arrow("labels", long)
        engine.register_arrow("members", m)
        seg = engine.query_arrow(sql_file("opencem.segments", "segment_summary"), step="segment_summary")
    seg = _finish(seg, len(ids), cl.definitions)
    members = pa.table({"subscriber_id": pa.array(ids.tolist(), pa.string()),
                        **{k: pa.array(v.tolist(), pa.string()) for k, v in labels.items()},
                        "arpu_monthly": arpu, "expected_score": score,
                        "mb_per_day": beh.mb_per_day, "nr_share": np.round(beh.nr_share, 6),
                        "home_work_km": beh.home_work_km, "gyration_km": beh.gyration_km})
    thresholds = {"arpu_median": round(arpu_cut, 2), "expected_score_median": round(score_cut, 3), "clusters": len(cl.names),
                  "window_days": window_days, "timezone": timezone}
    notes = [] if base.has_churn else [f"no churn scores as of {as_of}: {CHURN_NEEDED}"]
    folder = write_day(ws.segments / "segments", as_of, {"segments": seg, "members": members})
    return SegmentResult(as_of, seg, members, thresholds, base.has_churn, folder, notes)


def _filled(col: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(pc.cast(col, pa.string()), UNKNOWN).to_pylist(), dtype=object)


def _finish(seg: pa.Table, base: int, cluster_defs: dict[str, str]) -> pa.Table:
    """Segments in the order of DIMENSIONS (largest first within one), with their share of the base and
    how each is defined."""
    rows = seg.to_pylist()
    rank = {d: i for i, d in enumerate(DIMENSIONS)}
    rows.sort(key=lambda r: (rank[r["dimension"]], -r["subscribers"], r["segment"]))
    for r in rows:
        r["share"] = round(r["subscribers"] / base, 4)
        r["definition"] = cluster_defs.get(r["segment"], "") if r["dimension"] == "behaviour" else DIMENSIONS[r["dimension"]]
    cols = ["dimension", "segment", "subscribers", "share", "nps", "churn_risk", "arpu_mean", "arpu_total", "definition"]
    return pa.table({c: [r[c] for r in rows] for c in cols}, schema=pa.schema([
        ("dimension", pa.string()), ("segment", pa.string()), ("subscribers", pa.int64()), ("share", pa.float64()),
        ("nps", pa.float64()), ("churn_risk", pa.float64()), ("arpu_mean", pa.float64()), ("arpu_total", pa.float64()),
        ("definition", pa.string())]))
