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
from .steps import measure_steps

LAKE_TABLES = ("subscribers", "cells", "pm", "xdr", "radio_samples", "surveys", "care_contacts", "portouts")


@dataclass
class MeasureResult:
    ingest: IngestReport
    rows: dict[str, int]
    engine: str


def measure(data: Path, workspace: Path, engine: str = "duckdb", tree_path: Path | None = None,
            spark_master: str | None = None, progress: Callable[[str, int, int], None] | None = None,
            skip_ingest: bool = False) -> MeasureResult:
    workspace = Path(workspace)
    workspace.mkdir(parents=True, exist_ok=True)
    tree = load_tree(tree_path)  # fail on a bad tree before any work
    key = load_key(workspace / ".secrets" / "pseudonym.key", create=True)
    report = IngestReport() if skip_ingest else ingest(Path(data), workspace, key, progress)
    lake = workspace / "lake"
    eng = make_engine(engine, spark_master=spark_master)
    try:
        for name in LAKE_TABLES:
            files = sorted(str(p) for p in (lake / name).rglob("*.parquet")) if (lake / name).is_dir() else []
            if files:
                eng.register_parquet(name, files)
        steps = measure_steps(tree)
        rows = run_pipeline(eng, steps, workspace / "measure", progress)
    finally:
        eng.close()
    write_catalog(workspace / "measure", [s.name for s in steps], workspace / "catalog.duckdb")
    return MeasureResult(report, rows, engine)
