"""`opencem measure`: ingest the inputs into the lake, then KPI -> KQI -> CEI on the chosen engine."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..contracts import TABLES
from ..engine import make_engine, quote_ident, quote_literal
from ..engine.files import atomic_write_text
from ..engine.pipeline import run_pipeline, write_catalog
from ..indicators.tree import load_tree
from ..ingest.lake import IngestReport, ingest
from ..ingest.pseudonym import load_key
from ..workspace import LAKE_TABLES, Workspace
from .steps import PER_DAY_INPUTS, measure_steps


PENDING = "_pending.json"  # in measure/: the days a run started to compute and has not finished
CODE = "_code.json"  # in measure/: a digest of the steps' SQL the stored days were computed with


@dataclass
class MeasureResult:
    ingest: IngestReport
    rows: dict[str, int]
    engine: str
    days: list[dt.date] | None = None  # the days computed (None: every day)


def measure(data: Path, workspace: Path, engine: str = "duckdb", tree_path: Path | None = None,
            spark_master: str | None = None, progress: Callable[[str, int, int], None] | None = None,
            skip_ingest: bool = False, new_only: bool = False) -> MeasureResult:
    """Ingest ``data`` and compute every measure table. With ``new_only``, only input files new or changed
    since the last run are ingested, and only the days they hold are recomputed and rewritten; every
    other day's tables stay as they were (a first run, or one after a failed measure, does everything)."""
    ws = Workspace(workspace)
    ws.root.mkdir(parents=True, exist_ok=True)
    tree = load_tree(tree_path)  # fail on a bad tree before any work
    steps = measure_steps(tree)
    key = load_key(ws.pseudonym_key, create=True)
    measured = all(ws.measure_files(s.name) for s in steps)
    report = IngestReport() if skip_ingest else ingest(Path(data), ws.root, key, progress, new_only and measured)
    # the days a run has to compute (None: all), kept until it succeeds: the next run also does a failed one's
    pending = ws.measure / PENDING
    unfinished = json.loads(pending.read_text())["days"] if pending.exists() else []
    # days computed by other SQL (an upgrade, another tree) are stale: every day is computed again
    code = hashlib.sha256(json.dumps([[s.name, s.sql, s.partition_by] for s in steps]).encode()).hexdigest()
    same_code = (ws.measure / CODE).exists() and json.loads((ws.measure / CODE).read_text())["digest"] == code
    days = None if not report.new_only or unfinished is None or not same_code else \
        sorted(set(report.days) | {dt.date.fromisoformat(d) for d in unfinished})
    if days == []:  # nothing new
        return MeasureResult(report, {}, engine, [])
    atomic_write_text(pending, json.dumps({"days": None if days is None else [d.isoformat() for d in days]}) + "\n")
    eng = make_engine(engine, spark_master=spark_master, spill_dir=ws.spill)
    try:
        for name in LAKE_TABLES:  # the tables an operator has; a step reading a missing one fails naming it
            files = ws.lake_files(name)
            if not files:
                continue
            if days and name in PER_DAY_INPUTS:  # only the new days' rows (the dates are ours, not input text)
                eng.register_parquet(f"{name}_lake", files)
                day = f"CAST({quote_ident(TABLES[name].partition_by)} AS DATE)"
                eng.create_view(name, f"SELECT * FROM {name}_lake WHERE {day} IN "
                                      f"({', '.join(f'DATE {quote_literal(d.isoformat())}' for d in days)})")
            else:
                eng.register_parquet(name, files)
        rows = run_pipeline(eng, steps, ws.measure, progress, days=days)
    finally:
        eng.close()
    write_catalog(ws.measure, [s.name for s in steps], ws.catalog)
    atomic_write_text(ws.measure / CODE, json.dumps({"digest": code}) + "\n")
    pending.unlink()
    return MeasureResult(report, rows, engine, days)
