"""Named SQL steps run in order on an engine, published as Parquet, and a DuckDB catalog over the outputs."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from sqlglot.errors import SqlglotError

from .base import Engine, Params, StepError, check_name, quote_literal, transpile
from .files import replace_partitions


@dataclass
class Step:
    """One transformation: ``sql`` is a SELECT in DuckDB's dialect (the portable subset, docs/engine.md).

    The result is materialised as table ``name`` (later steps can read it by that name) and, when
    ``publish``, written to ``out_dir/<name>/`` with hive folders for ``partition_by``.
    """

    name: str
    sql: str
    partition_by: list[str] | None = None
    publish: bool = True


@cache
def sql_file(package: str, name: str) -> str:
    """The SQL template ``<package>/sql/<name>.sql`` (one file per output table)."""
    return resources.files(package).joinpath("sql").joinpath(f"{name}.sql").read_text()


def run_step(engine: Engine, step: Step, params: Params = None) -> int:
    """Materialise one step as its table on ``engine``; returns its rows."""
    engine.create_table(step.name, step.sql, params)
    return engine.row_count(step.name)


def run_pipeline(engine: Engine, steps: Sequence[Step], out_dir: Path | None = None,
                 progress: Callable[[str, int, int], None] | None = None, params: Params = None,
                 days: Sequence[dt.date] | None = None) -> dict[str, int]:
    """Run ``steps`` in order; write each published step to ``out_dir/<name>/``; return rows per step.
    With ``days``, only those days' partitions of each (day-partitioned) step are replaced; the others stay.

    ``progress(step_name, done, total)`` is called before each step (done = steps finished so far) and
    once at the end (done = total). Any failure is raised as StepError naming the step.
    """
    names = [check_name(s.name) for s in steps]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate step names: {dupes}")
    total = len(steps)
    rows: dict[str, int] = {}
    for i, step in enumerate(steps):
        if progress:
            progress(step.name, i, total)
        try:
            rows[step.name] = run_step(engine, step, params)
            if out_dir is not None and step.publish and days is None:
                engine.write_parquet(step.name, Path(out_dir) / step.name, step.partition_by)
            elif out_dir is not None and step.publish:
                if step.partition_by != ["day"]:
                    raise ValueError(f"{step.name}: only a table partitioned by day can be rewritten for some days")
                target = Path(out_dir) / step.name
                staging = target.parent / f".{target.name}.days"
                engine.write_parquet(step.name, staging, ["day"])
                replace_partitions(staging, target, "day", [d.isoformat() for d in days])
        except StepError:
            raise
        except Exception as e:
            try:
                sql = transpile(step.sql, engine.name)
            except (ValueError, SqlglotError):
                sql = step.sql
            raise StepError(step.name, sql, e, engine.name) from e
    if progress and total:
        progress(steps[-1].name, total, total)
    return rows


def write_catalog(out_dir: Path, tables: Sequence[str], catalog_path: Path, relative: bool = True) -> Path:
    """Create a DuckDB database file with one VIEW per table over ``out_dir/<table>/**/*.parquet``.

    DuckDB resolves a relative path in a view against the *current directory* (or the
    ``file_search_path`` setting) when the view is queried, never against the database file. With
    ``relative=True`` (default) the paths are written relative to the catalog file's folder, so the
    workspace can be moved: query it from that folder (``cd WS && duckdb catalog.duckdb``) or from
    anywhere with ``duckdb -cmd "SET file_search_path='WS'" WS/catalog.duckdb``. With ``relative=False``
    absolute paths are written: it opens from anywhere but breaks if the workspace moves.

    The file is written next to ``catalog_path`` and renamed into place (an existing catalog is
    replaced). Tables without a Parquet file are skipped. Returns ``catalog_path``.
    """
    import duckdb

    out_dir = Path(out_dir).resolve()
    catalog_path = Path(catalog_path)
    catalog_path.parent.mkdir(parents=True, exist_ok=True)
    home = catalog_path.parent.resolve()
    tmp = home / f".{catalog_path.name}.tmp-{os.getpid()}"
    for p in (tmp, Path(str(tmp) + ".wal")):
        p.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        con.execute(f"SET file_search_path = {quote_literal(str(home))}")
        for name in tables:
            check_name(name)
            folder = out_dir / name
            if not any(folder.rglob("*.parquet")):
                continue
            where = os.path.relpath(folder, home) if relative else str(folder)
            glob = where.replace(os.sep, "/") + "/**/*.parquet"
            con.execute(
                f'CREATE OR REPLACE VIEW "{name}" AS SELECT * FROM read_parquet({quote_literal(glob)}, hive_partitioning = true)'
            )
        con.execute("CHECKPOINT")
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    os.replace(tmp, catalog_path)
    return catalog_path


__all__ = ["Step", "StepError", "run_pipeline", "run_step", "sql_file", "write_catalog"]
