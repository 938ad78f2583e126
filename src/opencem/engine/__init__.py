"""SQL engines for the KPI -> KQI -> CEI pipeline: DuckDB (embedded, default) and Apache Spark.

Transformations are written once in DuckDB's SQL dialect (the portable subset in docs/engine.md) and
translated for Spark with SQLGlot. Nothing outside this package imports pyspark; pyspark is imported
only when a SparkEngine starts its session.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import InputError
from .base import (
    Engine,
    Params,
    StepError,
    normalise_arrow,
    normalise_type,
    quote_ident,
    quote_literal,
    transpile,
)
from .duckdb_engine import DuckDBEngine
from .files import atomic_dir, atomic_write_text
from .parity import compare_tables
from .pipeline import Step, run_pipeline, run_step, sql_file, write_catalog
from .spark_engine import SparkEngine


def make_engine(name: str = "duckdb", spark_master: str | None = None, spill_dir: str | Path | None = None,
                **kwargs) -> Engine:
    """An engine by name: ``duckdb`` (kwargs: database, threads, memory_limit) or ``spark``
    (kwargs: app_name, conf; ``spark_master`` defaults to ``local[*]``). ``spill_dir``: where the engine
    spills what does not fit in memory (DuckDB's temp_directory, Spark's local dir)."""
    if name == "duckdb":
        return DuckDBEngine(spill_dir=spill_dir, **kwargs)
    if name == "spark":
        if importlib.util.find_spec("pyspark") is None:  # said before any work starts, in one line
            raise InputError("the Spark engine needs pyspark: pip install 'opencem[spark]' (and Java 17 or later)")
        if spill_dir:
            kwargs["conf"] = {"spark.local.dir": str(spill_dir), **kwargs.get("conf", {})}
        return SparkEngine(master=spark_master or "local[*]", **kwargs)
    raise ValueError(f"unknown engine {name!r}: use duckdb or spark")


__all__ = [
    "DuckDBEngine",
    "Engine",
    "Params",
    "SparkEngine",
    "Step",
    "StepError",
    "atomic_dir",
    "atomic_write_text",
    "compare_tables",
    "make_engine",
    "normalise_arrow",
    "normalise_type",
    "quote_ident",
    "quote_literal",
    "run_pipeline",
    "run_step",
    "sql_file",
    "transpile",
    "write_catalog",
]
