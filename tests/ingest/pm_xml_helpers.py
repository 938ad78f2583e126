"""PM XML helpers that only the tests use: reading the warnings back, batch ingestion of files, and the wide
(one column per counter) form of a long PM table. The lake ingests PM XML through ``opencem.ingest.lake``."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from opencem.engine import make_engine, quote_ident, quote_literal
from opencem.ingest.pm_xml import META_UNPARSEABLE, META_WARNINGS, PmFileRejected, read_pm_xml


def pm_warnings(table: pa.Table) -> tuple[int, list[str]]:
    """``(number of unparseable values, first warnings)`` recorded by :func:`read_pm_xml`."""
    meta = table.schema.metadata or {}
    count = int(meta.get(META_UNPARSEABLE, b"0"))
    warnings = json.loads(meta.get(META_WARNINGS, b"[]"))
    return count, warnings


# ---------------------------------------------------------------------------------------------
# Batch ingestion


def _atomic_write_bytes(target: Path, write) -> None:
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def ingest_pm_xml(
    paths: Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    rejected_dir: str | os.PathLike,
) -> dict:
    """Read each PM file; accepted ones go to ``out_dir/<file name>.parquet``, rejected ones are
    copied to ``rejected_dir/<file name>`` with ``rejected_dir/<file name>.reason.txt``.

    Every output file is written under a temporary name and renamed into place, so a reader never
    sees a half-written file. Re-running on the same inputs rewrites byte-identical Parquet.
    When a file is accepted, a stale rejected copy and reason of the same name are removed; a
    rejection never deletes an earlier accepted Parquet file.

    Returns ``{"files_ok": int, "files_rejected": int, "rows": int}`` (rows written this run).
    Raises ``ValueError`` (before writing anything) if two inputs share a file name, and lets
    ``OSError`` from unreadable inputs propagate.
    """
    paths = [Path(p) for p in paths]
    names = [p.name for p in paths]
    dupes = sorted(n for n, k in Counter(names).items() if k > 1)
    if dupes:
        raise ValueError(f"input file names must be unique (output is named after them): {dupes}")
    out_dir, rejected_dir = Path(out_dir), Path(rejected_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rejected_dir.mkdir(parents=True, exist_ok=True)

    files_ok = files_rejected = rows = 0
    for path in paths:
        try:
            table = read_pm_xml(path)
        except PmFileRejected as e:
            files_rejected += 1
            reason = str(e) + "\n"
            _atomic_write_bytes(rejected_dir / path.name, lambda tmp: shutil.copyfile(path, tmp))
            _atomic_write_bytes(
                rejected_dir / f"{path.name}.reason.txt",
                lambda tmp: tmp.write_text(reason, encoding="utf-8"),
            )
            continue
        _atomic_write_bytes(out_dir / f"{path.name}.parquet", lambda tmp: pq.write_table(table, tmp))
        (rejected_dir / path.name).unlink(missing_ok=True)
        (rejected_dir / f"{path.name}.reason.txt").unlink(missing_ok=True)
        files_ok += 1
        rows += table.num_rows
    return {"files_ok": files_ok, "files_rejected": files_rejected, "rows": rows}


# ---------------------------------------------------------------------------------------------
# Wide form for the `pm` table


_PIVOT_KEYS = ("meas_obj_ldn", "period_start", "granularity_s")


def pivot_counters(long_table: pa.Table, counters: list[str]) -> pa.Table:
    """Wide form of a long PM table: one row per (meas_obj_ldn, period_start, granularity_s)
    with one float64 column per requested counter, named exactly like the counter
    (e.g. ``"RRC.ConnEstabAtt"``), plus ``suspect`` (true if any contributing value is suspect).

    * Array counters are summed over their elements; if any element is null the sum is null.
    * A counter missing for an object/period is null. Objects/periods that carry none of the
      requested counters are left out.
    * ``granularity_s`` is part of the key so two jobs with different periods never add up;
      with one granularity per file this is one row per (meas_obj_ldn, period_start).
    * The same (key, counter, array_index) present twice (e.g. one file ingested twice, or two
      managed elements with the same relative measObjLdn) raises ``ValueError``.
    Rows are sorted by meas_obj_ldn, period_start, granularity_s.
    """
    counters = list(counters)
    if not counters:
        raise ValueError("counters must not be empty")
    if len(set(counters)) != len(counters):
        raise ValueError(f"counters listed twice: {counters}")
    clash = set(counters) & {*_PIVOT_KEYS, "suspect"}
    if clash:
        raise ValueError(f"counter names clash with output columns: {sorted(clash)}")
    missing = {*_PIVOT_KEYS, "counter", "array_index", "value", "suspect"} - set(long_table.column_names)
    if missing:
        raise ValueError(f"long_table lacks columns {sorted(missing)}")

    keys = ", ".join(_PIVOT_KEYS)
    with make_engine("duckdb") as eng:
        eng.register_arrow("long_pm", long_table.select([*_PIVOT_KEYS, "counter", "array_index", "value", "suspect"]))
        eng.create_table("f", "SELECT * FROM long_pm WHERE list_contains($counters, counter)", {"counters": counters})
        dup = eng.query_arrow(
            f"SELECT meas_obj_ldn, CAST(period_start AS VARCHAR), counter, array_index, count(*) AS n "
            f"FROM f GROUP BY {keys}, counter, array_index HAVING count(*) > 1 "
            f"ORDER BY 1, 2, 3, 4 LIMIT 5", step="duplicates")
        if dup.num_rows:
            rows = list(zip(*(c.to_pylist() for c in dup.columns)))
            raise ValueError(f"duplicate counter values for the same object and period, e.g. {rows}")
        pivots = ", ".join(
            f"max(v) FILTER (WHERE counter = {quote_literal(c)}) AS {quote_ident(c)}" for c in counters
        )
        result = eng.query_arrow(
            f"WITH per AS ("
            f"  SELECT {keys}, counter,"
            f"    CASE WHEN count(value) = count(*) THEN sum(value) END AS v,"
            f"    bool_or(suspect) AS s"
            f"  FROM f GROUP BY {keys}, counter)"
            f" SELECT {keys}, {pivots}, bool_or(s) AS suspect FROM per"
            f" GROUP BY {keys} ORDER BY {keys}", step="pivot")

    fields = [long_table.schema.field(k) for k in _PIVOT_KEYS]
    fields += [pa.field(c, pa.float64()) for c in counters]
    fields.append(pa.field("suspect", pa.bool_()))
    return result.cast(pa.schema(fields))
