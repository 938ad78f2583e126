"""Each subscriber's main cell and main place as of a day, from window counts that a new day advances.

The main cell is the cell of most sessions in the window (the :data:`~.features.WINDOW_DAYS` days before the
as-of day), the main place the position of most located measurement reports: argmaxes of per-subscriber
counts. Counting 28 days of measure's summaries again for 1M subscribers (177 M subscriber-cell-days) takes
over a minute, so score keeps the window's counts as state (``WS/nps/place_sums/as_of=D/``) and the next
as-of day adds the days since and takes away the days that left the window: a day or two of summaries
instead of 28. A state is used only when every day of its window still has the files measure had written
then (a fingerprint per day); otherwise the window is counted whole, by the same SQL from no state.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..engine import Engine
from ..engine.files import atomic_dir
from ..engine.pipeline import sql_file
from ..geo import DEFAULT_RESOLUTION, grid_of
from ..workspace import Workspace
from .features import WINDOW_DAYS

STATE = "place_sums"  # WS/nps/place_sums/as_of=D/{cell_sums,position_sums}/ and manifest.json
MANIFEST = "manifest.json"
# how a state keys its subscribers: the pseudonym's hex digits 1-15 and 16-30 as integers (a state keyed
# otherwise is not used); DuckDB SQL, which transpile turns into Spark's CONV
SUBSCRIBER_KEY = {"sub_hi": "CAST('0x' || substr(subscriber_id, 1, 15) AS BIGINT)",
                  "sub_lo": "CAST('0x' || substr(subscriber_id, 16, 15) AS BIGINT)"}
KEY = "pseudonym hex digits 1-15, 16-30"
# state table -> (measure table, the counted value's columns, the count)
SUMS = {"cell_sums": ("subscriber_cell_day", "cell_id", "sessions"),
        "position_sums": ("subscriber_position_day", "lat, lon", "reports")}


def main_places(engine: Engine, ws: Workspace, as_of: dt.date) -> pa.Table:
    """(subscriber_id, main_cell, grid) of every subscriber with a session in the window before ``as_of``;
    the window's counts are kept for the next day, keyed by the subscriber's pseudonym (the lake's
    subscriber_id is always one: 32 hex digits)."""
    window = dt.timedelta(days=WINDOW_DAYS)
    prints = _day_prints(ws)
    base = _usable_state(ws, as_of, prints)
    for name, (table, keys, count) in SUMS.items():
        if base is None:  # the whole window, from no state
            prev = f"(SELECT CAST(0 AS BIGINT) AS sub_hi, CAST(0 AS BIGINT) AS sub_lo, {keys}, CAST(0 AS BIGINT) AS n FROM {table} WHERE false)"
            days = {"add_from": as_of - window, "add_to": as_of, "drop_from": as_of, "drop_to": as_of}
        else:  # the base's counts, the days since it, less the days gone out of the window
            engine.register_parquet(f"prev_{name}", [str(p) for p in sorted((_folder(ws, base) / name).rglob("*.parquet"))])
            prev = f"prev_{name}"
            days = {"add_from": base, "add_to": as_of, "drop_from": base - window, "drop_to": as_of - window}
        sql = sql_file("opencem.nps", "place_sums").format(prev=prev, table=table, keys=keys, count=count, **SUBSCRIBER_KEY)
        engine.create_table(name, sql, days)
    with atomic_dir(_folder(ws, as_of)) as tmp:
        tmp.mkdir()
        for name in SUMS:
            engine.write_parquet(name, tmp / name)
        kept = {d: p for d, p in prints.items() if as_of - window <= dt.date.fromisoformat(d) < as_of}
        (tmp / MANIFEST).write_text(json.dumps({"window_days": WINDOW_DAYS, "key": KEY, "days": kept}, indent=1, sort_keys=True) + "\n")
    t = engine.query_arrow(sql_file("opencem.nps", "places").format(**SUBSCRIBER_KEY), step="places")
    for name in SUMS:
        engine.drop(name)
        engine.drop(f"prev_{name}")
    for old in (ws.nps / STATE).glob("as_of=*"):  # the states before this one are not needed again
        if old.name[6:] < as_of.isoformat():
            shutil.rmtree(old)
    # a subscriber's main place is snapped to 1e-3 degrees (about 100 m) before the hexagon lookup
    lat, lon = (np.round(pc.fill_null(pc.cast(t[c], pa.float64()), float("nan")).to_numpy(), 3) for c in ("lat", "lon"))
    grid = grid_of(lat, lon, DEFAULT_RESOLUTION)
    return pa.table({"subscriber_id": t["subscriber_id"], "main_cell": t["main_cell"], "grid": pa.array(grid, pa.string())})


def _folder(ws: Workspace, as_of: dt.date) -> Path:
    return ws.nps / STATE / f"as_of={as_of}"


def _day_prints(ws: Workspace) -> dict[str, str]:
    """A fingerprint per measured day of the summaries the counts come from: the names, sizes and
    modification times of the day's files (measure writes a recomputed day as new files)."""
    files: dict[str, list[str]] = {}
    for table, _, _ in SUMS.values():
        for f in map(Path, ws.measure_files(table)):  # .../<table>/day=YYYY-MM-DD/<file>.parquet
            st = f.stat()
            files.setdefault(f.parent.name[4:], []).append(f"{table}/{f.name}:{st.st_size}:{st.st_mtime_ns}")
    return {d: hashlib.sha256("\n".join(v).encode()).hexdigest()[:16] for d, v in files.items()}


def _usable_state(ws: Workspace, as_of: dt.date, prints: dict[str, str]) -> dt.date | None:
    """The latest kept state before ``as_of`` whose window overlaps it and whose days are unchanged."""
    states = sorted((p for p in (ws.nps / STATE).glob("as_of=*") if (p / MANIFEST).exists()), reverse=True)
    for p in states:
        base = dt.date.fromisoformat(p.name[6:])
        if not (as_of - dt.timedelta(days=WINDOW_DAYS) < base < as_of):
            continue
        doc = json.loads((p / MANIFEST).read_text())
        lo = base - dt.timedelta(days=WINDOW_DAYS)
        now = {d: v for d, v in prints.items() if lo <= dt.date.fromisoformat(d) < base}
        if doc.get("window_days") == WINDOW_DAYS and doc.get("key") == KEY and doc.get("days") == now:
            return base
    return None
