"""What the API serves, read from one workspace when the server starts (restart it to serve a new run).

Small, hot lookups are held in memory: each subscriber's consents and profile, and the last known position
of each subscriber (from the last days of MR and xDR), so that a location call costs one dictionary look-up.
The rest is read on demand through one DuckDB engine of the workspace (``Workspace.session``), serialised by
a lock, with the SQL in ``api/sql/``. Churn, loop and segment outputs are read as files (Parquet / JSON).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import h3
import pyarrow.parquet as pq

from ..engine import sql_file
from ..errors import InputError
from ..geo import DEFAULT_RESOLUTION
from ..ingest.pseudonym import Pseudonymiser, load_key
from ..workspace import Workspace, empty_table_sql

UTC = dt.UTC
# the radius a serving cell places a device in, by the cell's area type (a site's typical reach)
CELL_RADIUS_M = {"core": 600.0, "urban": 800.0, "suburb": 1500.0, "highway": 3000.0, "rural": 5000.0}
DEFAULT_CELL_RADIUS_M = 2000.0
FIX_WINDOW = dt.timedelta(minutes=15)  # a GPS fix this close to the last observation locates the device
_DAY = re.compile(r"day=(\d{4}-\d{2}-\d{2})")
_AS_OF = re.compile(r"^as_of=(\d{4}-\d{2}-\d{2})$")


def utc(t: dt.datetime | None) -> dt.datetime | None:
    """Engine timestamps are naive UTC wall clock: make them aware."""
    if t is None:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


@dataclass(frozen=True)
class Position:
    """A device's last known place: an H3 hexagon around a GPS fix, or a circle about its serving cell."""
    time: dt.datetime
    lat: float
    lon: float
    hex_cell: str | None = None
    radius_m: float | None = None


@dataclass(frozen=True)
class Subscriber:
    consent_location: bool
    consent_preferences: bool
    plan: str
    device_capability: str
    device_vendor: str


def latest_partition(folder: Path) -> tuple[Path, dt.date] | None:
    """The newest ``as_of=D`` folder under ``folder`` and its day."""
    if not folder.is_dir():
        return None
    found = sorted((m.group(1), p) for p in folder.iterdir() if p.is_dir() and (m := _AS_OF.match(p.name)))
    if not found:
        return None
    return found[-1][1], dt.date.fromisoformat(found[-1][0])


class Store:
    """The workspace's data for the API. ``recent_days``: days of MR / xDR scanned for last positions."""

    def __init__(self, root: str | Path, recent_days: int = 2) -> None:
        self.ws = Workspace(root)
        if not (self.ws.lake / "subscribers").is_dir():
            raise InputError(f"{self.ws.root}: not an OpenCEM workspace with a lake (no lake/subscribers); "
                             "run `opencem measure DATA WS` first")
        self.pseudonymiser = Pseudonymiser(load_key(self.ws.pseudonym_key))
        self._lock = threading.Lock()
        measure = tuple(t for t in ("cei_subscriber_day", "cei_service_day") if self.ws.measure_files(t))
        self.engine = self.ws.session(tables=("subscribers", "cells") + measure)
        self.tables = set(("subscribers", "cells") + measure)
        try:
            self._load(recent_days)
        except BaseException:
            self.engine.close()
            raise

    # -- loading ----------------------------------------------------------------------------------------
    def _register_recent(self, name: str, table: str, days: int) -> None:
        files = self.ws.lake_files(table)
        dated = sorted({m.group(1) for f in files if (m := _DAY.search(f))})
        keep = set(dated[-days:])
        chosen = [f for f in files if (m := _DAY.search(f)) and m.group(1) in keep] or files
        if chosen:
            self.engine.register_parquet(name, chosen)
        else:  # no such files: an empty table of the contract's shape
            self.engine.create_view(name, empty_table_sql(table))

    def _load(self, recent_days: int) -> None:
        subs = self.query("subscribers")
        self.subscribers = {r["subscriber_id"]: Subscriber(bool(r["consent_location"]), bool(r["consent_preferences"]),
                                                           r["plan"], r["device_capability"], r["device_vendor"])
                            for r in subs}
        self._register_recent("recent_mr", "radio_samples", recent_days)
        self._register_recent("recent_xdr", "xdr", recent_days)
        self.positions: dict[str, Position] = {}
        for r in self.query("latest_positions"):
            last, fix = utc(r["last_time"]), utc(r["fix_time"])
            if fix is not None and fix >= last - FIX_WINDOW:
                cell = h3.latlng_to_cell(r["fix_lat"], r["fix_lon"], DEFAULT_RESOLUTION)
                lat, lon = h3.cell_to_latlng(cell)
                self.positions[r["subscriber_id"]] = Position(fix, lat, lon, hex_cell=cell)
            elif r["cell_lat"] is not None:
                radius = CELL_RADIUS_M.get(str(r["area_type"]).lower(), DEFAULT_CELL_RADIUS_M)
                self.positions[r["subscriber_id"]] = Position(last, r["cell_lat"], r["cell_lon"], radius_m=radius)
        box = self.query("cell_extent")[0]
        self.cell_bbox = (box["lat_min"], box["lon_min"], box["lat_max"], box["lon_max"]) if box["lat_min"] is not None else None

        # NPS (score) outputs: the newest as_of
        self.nps_as_of = None
        self.nps_segments: list[dict] = []
        scores = latest_partition(self.ws.nps / "scores")
        if scores:
            self.engine.register_parquet("scores", sorted(str(p) for p in scores[0].glob("*.parquet")), hive_partitioning=False)
            self.tables.add("scores")
            self.nps_as_of = scores[1]
        segs = latest_partition(self.ws.nps / "segments")
        if segs:
            for f in sorted(segs[0].glob("*.parquet")):
                self.nps_segments.extend(pq.read_table(f).to_pylist())
            self.nps_as_of = self.nps_as_of or segs[1]

        # the twin (diagnose)
        self.grids: set[str] = set()
        self.twin_first = self.twin_end = None
        grid_files = self.ws.twin_files("state_grid_hour")
        if grid_files:
            self.engine.register_parquet("state_grid_hour", grid_files)
            self.tables.add("state_grid_hour")
            r = self.query("twin_extent")[0]
            if r["last_hour"] is not None:
                self.twin_first, self.twin_end = utc(r["first_hour"]), utc(r["last_hour"]) + dt.timedelta(hours=1)
            self.grids = {row["grid"] for row in self.query("twin_grids")}
        ep = self.ws.twin / "episodes.parquet"
        self.episodes = pq.read_table(ep).to_pylist() if ep.exists() else None

        times = [p.time for p in self.positions.values()]
        self.data_end = max(times) if times else self.twin_end

    # -- access -----------------------------------------------------------------------------------------
    def query(self, name: str, params: dict | None = None) -> list[dict]:
        """Rows of ``api/sql/<name>.sql`` with its ``$parameters``."""
        with self._lock:
            return self.engine.query_arrow(sql_file("opencem.api", name), params, step=name).to_pylist()

    def pseudonym(self, phone_number: str) -> str:
        return self.pseudonymiser.one(phone_number)

    def insight_tables(self) -> dict[str, Path]:
        """Aggregate tables of the loop, churn and segments stages (Parquet files without a subscriber_id
        column), by name ``<stage>.<table>[.<file>]``; the newest ``as_of`` of dated tables."""
        out: dict[str, Path] = {}
        for stage in ("loop", "churn", "segments"):
            base = self.ws.root / stage
            if not base.is_dir():
                continue
            for table in sorted(p for p in base.iterdir() if p.is_dir()):
                latest = latest_partition(table)
                folder = latest[0] if latest else table
                for f in sorted(folder.rglob("*.parquet")):
                    try:
                        names = pq.read_schema(f).names
                    except OSError:
                        continue
                    if "subscriber_id" in names:
                        continue
                    stem = f.stem if f.stem not in (table.name, "part-00000") else ""
                    out[".".join(x for x in (stage, table.name, stem) if x)] = f
            for f in sorted(base.glob("*.parquet")):
                if "subscriber_id" not in pq.read_schema(f).names:
                    out[f"{stage}.{f.stem}"] = f
        return out

    def insight_documents(self) -> dict[str, Path]:
        """JSON documents of the loop, churn and segments stages (plans, fix requests, comparisons, ticket
        bodies ...), by name ``<stage>.<folder>.<file>``, leaving out any that mentions a ``subscriber_id``."""
        out: dict[str, Path] = {}
        for stage in ("loop", "churn", "segments"):
            base = self.ws.root / stage
            if not base.is_dir():
                continue
            for f in sorted(base.rglob("*.json")):
                rel = f.relative_to(base).with_suffix("")
                if any(_AS_OF.match(part) for part in rel.parts) or "subscriber_id" in f.read_text(errors="replace"):
                    continue
                out[".".join((stage, *rel.parts))] = f
        return out

    def close(self) -> None:
        self.engine.close()


def read_json(path: Path):
    return json.loads(path.read_text())
