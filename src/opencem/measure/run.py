"""`opencem measure`: ingest the inputs into the lake, then KPI -> KQI -> CEI on the chosen engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..engine import make_engine
from ..engine.pipeline import run_pipeline, write_catalog
from ..indicators.tree import load_tree
from ..ingest.lake import IngestReport, ingest
from ..ingest.pseudonym import load_key
from ..workspace import LAKE_TABLES, Workspace
from .steps import measure_steps


@dataclass
class MeasureResult:
    ingest: IngestReport
    rows: dict[str, int]
    engine: str


def measure(data: Path, workspace: Path, engine: str = "duckdb", tree_path: Path | None = None,
            spark_master: str | None = None, progress: Callable[[str, int, int], None] | None = None,
            skip_ingest: bool = False) -> MeasureResult:
    ws = Workspace(workspace)
    ws.root.mkdir(parents=True, exist_ok=True)
    tree = load_tree(tree_path)  # fail on a bad tree before any work
    key = load_key(ws.pseudonym_key, create=True)
    report = IngestReport() if skip_ingest else ingest(Path(data), ws.root, key, progress)
    eng = make_engine(engine, spark_master=spark_master, spill_dir=ws.spill)
    try:
        for name in LAKE_TABLES:  # the tables an operator has; a step reading a missing one fails naming it
            files = ws.lake_files(name)
            if files:
                eng.register_parquet(name, files)
        steps = measure_steps(tree)
        rows = run_pipeline(eng, steps, ws.measure, progress)
    finally:
        eng.close()
    write_catalog(ws.measure, [s.name for s in steps], ws.catalog)
    return MeasureResult(report, rows, engine)
