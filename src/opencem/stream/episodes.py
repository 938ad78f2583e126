"""Episode alerts of the stream: the twin's own diagnosis over the last days, after each micro-batch.

The twin (:func:`opencem.twin.run.diagnose`: grid x hour state, the anomaly tests, the clustering and the
causes) runs over a *shadow* workspace, a folder of links to the workspace's lake and measure files with
the micro-batch's staged files in place of theirs, for the ``episode_days`` days up to the stream's clock.
Its tables become the stream's live twin (``WS/stream/twin/``) in the batch's commit.

An episode still going on (its last grid-hour at most ``LIVE_HOURS`` before the clock) is compared with the
live twin before the batch by the grid-hours they share:

* none shared: ``episode_start``;
* more grid-hours than the episodes it overlaps had: ``episode_grow``;
* a network cause named where the episodes before had none: ``episode_cause``.

Each alert's id names the episode by its first grid-hour (and its size, for growth), so the same batches
give the same ids and a receiver drops a repeat.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .. import vocabulary

LIVE_HOURS = 2  # an episode whose last grid-hour is this close to the clock is still going on
UNNAMED = (None, vocabulary.NON_NETWORK, "network (unclear)", "unclear")


def _link_tree(src: Path, dst: Path) -> None:
    for f in src.rglob("*.parquet"):
        link = dst / f.relative_to(src)
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(f.resolve())


def shadow_workspace(streamer, stage: Path, moves: list[list[str]]) -> Path:
    """Links to the workspace's lake and measure, the staged lake files beside them and the staged measure
    partitions in place of theirs."""
    root = streamer.ws.root
    shadow = stage / "shadow"
    shutil.rmtree(shadow, ignore_errors=True)
    for kind in ("lake", "measure"):
        _link_tree(root / kind, shadow / kind)
    for src_rel, dst_rel in moves:
        if not dst_rel.startswith(("lake/", "measure/")):
            continue
        src, dst = root / src_rel, shadow / dst_rel
        if src.is_dir():
            shutil.rmtree(dst, ignore_errors=True)
            _link_tree(src, dst)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(src.resolve())
    if streamer.ws.calibrated_tree.exists():
        (shadow / streamer.ws.calibrated_tree.name).symlink_to(streamer.ws.calibrated_tree.resolve())
    return shadow


def episode_alerts(streamer, stage: Path, moves: list[list[str]], rel, batch: int, clock: dt.datetime) -> pa.Table:
    from ..twin.run import diagnose
    from .run import OUTBOX_SCHEMA

    shadow = shadow_workspace(streamer, stage, moves)
    end = clock.date() + dt.timedelta(days=1)
    start = end - dt.timedelta(days=streamer.episode_days)
    first = min((dt.date.fromisoformat(p.name[4:]) for p in (shadow / "lake" / "xdr").glob("day=*")), default=start)
    # the days' state is kept beside the stream's state: only the days this batch changed are built again
    diag = diagnose(shadow, max(start, first), end, days_folder=streamer.state.root / "twin_days")
    live = streamer.state.root / "twin"
    units = pq.read_table(shadow / "twin" / "episode_units.parquet")
    before_eps = pq.read_table(live / "episodes.parquet") if (live / "episodes.parquet").exists() else None
    before_units = pq.read_table(live / "episode_units.parquet") if (live / "episode_units.parquet").exists() else None
    at: dict[tuple, str] = {}
    if before_units is not None:
        at = {(g, h): e for e, g, h in zip(before_units["episode_id"].to_pylist(), before_units["grid"].to_pylist(),
                                           before_units["hour"].to_pylist())}
    before = {r["episode_id"]: r for r in before_eps.to_pylist()} if before_eps is not None else {}
    mine: dict[str, list[tuple]] = {}
    for e, g, h in zip(units["episode_id"].to_pylist(), units["grid"].to_pylist(), units["hour"].to_pylist()):
        mine.setdefault(e, []).append((g, h))
    rows = []
    for ep in diag.episodes.to_pylist():
        if ep["kind"] != "area" or ep["end_time"] < clock - dt.timedelta(hours=LIVE_HOURS):
            continue
        cells = sorted(mine.get(ep["episode_id"], []), key=lambda u: (u[1], u[0]))
        if not cells:
            continue
        key = f"{cells[0][0]}@{cells[0][1]:%Y-%m-%dT%H}"
        overlap = {at[u] for u in cells if u in at}
        was = [before[e] for e in sorted(overlap) if e in before]
        if not overlap:
            kind, aid = "episode_start", f"episode-start:{key}"
        elif ep["grid_hours"] > sum(w["grid_hours"] for w in was):
            kind, aid = "episode_grow", f"episode-grow:{key}:{ep['grid_hours']}"
        elif ep["cause"] not in UNNAMED and all(w["cause"] in UNNAMED for w in was):
            kind, aid = "episode_cause", f"episode-cause:{key}:{ep['cause']}"
        else:
            continue
        detail = {k: ep[k] for k in ("grid_hours", "grids", "subscribers", "affected_subscribers", "confidence",
                                     "evidence", "cells", "main_signal", "center_lat", "center_lon", "area_km2")}
        detail.update(start_time=ep["start_time"].isoformat(), end_time=ep["end_time"].isoformat(), grid_list=ep["grid_list"],
                      clock=clock.isoformat())
        rows.append({"alert_id": aid, "batch": batch, "kind": kind, "subscriber_id": None, "grid": cells[0][0],
                     "as_of": None, "event_time": ep["start_time"], "cause": ep["cause"],
                     "detail": json.dumps(detail, sort_keys=True, default=str)})
    moves.append([rel(shadow / "twin"), rel(live)])
    return pa.Table.from_pylist(rows, schema=OUTBOX_SCHEMA)
