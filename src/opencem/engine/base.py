"""The engine interface shared by DuckDB and Spark, plus the pieces both use.

* ``Engine``: the abstract interface (register inputs, materialise SELECTs, read results, write Parquet).
* ``StepError``: a failed step, naming the step, the SQL that ran (translated for Spark) and the engine's error.
* ``transpile``: DuckDB SQL -> the engine's dialect (SQLGlot, plus small fixes for constructs it gets wrong).
* ``normalise_arrow``: the type normalisation applied to every result leaving an engine, so that the same
  SQL gives the same Arrow schema on both engines.
* ``compare_tables``: the parity harness (same columns, types, rows; floats within a relative tolerance).
* ``atomic_dir``: write a folder next to its destination, then swap it into place.

See docs/engine.md for the portable SQL subset and the normalisation rules.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ENGINES = ("duckdb", "spark")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_ERROR_CHARS = 4000


def check_name(name: str) -> str:
    """Table names are plain identifiers on both engines (letters, digits, underscore)."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"invalid table name {name!r}: use letters, digits and underscores, not starting with a digit")
    return name


class StepError(RuntimeError):
    """A pipeline step (or query) failed. The message names the step and shows the SQL that ran.

    Attributes: ``step`` (name), ``sql`` (as run by the engine: the Spark translation on Spark),
    ``engine`` (name) and ``error`` (the engine's error text). The original exception is ``__cause__``.
    """

    def __init__(self, step: str, sql: str, error: BaseException | str, engine: str | None = None):
        self.step = step
        self.sql = sql
        self.engine = engine
        text = str(error).strip() or type(error).__name__
        if len(text) > _MAX_ERROR_CHARS:
            text = text[:_MAX_ERROR_CHARS] + " ..."
        self.error = text
        on = f" on {engine}" if engine else ""
        super().__init__(f"step {step!r} failed{on}: {text}\n-- SQL{f' ({engine})' if engine else ''}:\n{sql}")


# --------------------------------------------------------------------------------------------------
# SQL translation
# --------------------------------------------------------------------------------------------------

def _spark_fixes(node):
    """Rewrite constructs SQLGlot (30.x) translates to something wrong or missing on Spark 4.

    * ``quantile_cont(x, p)`` becomes ``PERCENTILE_CONT(x, p)``, which Spark rejects (it only has the
      ``WITHIN GROUP`` form): rewritten to Spark's exact ``PERCENTILE(x, p)`` (same linear interpolation).
    * ``percentile_cont(p) WITHIN GROUP (ORDER BY x)`` becomes ``PERCENTILE_APPROX`` (approximate!):
      rewritten to the exact ``PERCENTILE(x, p)`` (``ORDER BY x DESC`` uses ``1 - p``).
    """
    from sqlglot import exp

    if isinstance(node, exp.WithinGroup) and isinstance(node.this, exp.PercentileCont):
        order = node.expression
        ordered = order.expressions if isinstance(order, exp.Order) else []
        if len(ordered) != 1:
            raise ValueError("percentile_cont(...) WITHIN GROUP needs exactly one ORDER BY expression")
        o = ordered[0]
        p = node.this.this
        if o.args.get("desc"):
            p = exp.Sub(this=exp.Literal.number(1), expression=p.copy())
        return exp.Anonymous(this="PERCENTILE", expressions=[o.this.copy(), p.copy()])
    if (isinstance(node, exp.PercentileCont) and node.args.get("expression") is not None
            and not isinstance(node.parent, exp.WithinGroup)):
        return exp.Anonymous(this="PERCENTILE", expressions=[node.this.copy(), node.expression.copy()])
    return node


@lru_cache(maxsize=512)
def transpile(sql: str, engine_name: str) -> str:
    """Translate one SQL statement written in DuckDB's dialect for ``engine_name``.

    ``duckdb``: returned unchanged. ``spark``: parsed with SQLGlot (read='duckdb'), fixed by
    ``_spark_fixes`` and generated with write='spark'; SQLGlot raises on constructs it knows it cannot
    translate (``unsupported_level=RAISE``). Exactly one statement is allowed.
    """
    if engine_name == "duckdb":
        return sql
    if engine_name != "spark":
        raise ValueError(f"unknown engine {engine_name!r}: use one of {', '.join(ENGINES)}")
    import sqlglot
    from sqlglot.errors import ErrorLevel

    trees = [t for t in sqlglot.parse(sql, read="duckdb") if t is not None]
    if len(trees) != 1:
        raise ValueError(f"expected exactly one SQL statement, got {len(trees)}")
    tree = trees[0].transform(_spark_fixes)
    return tree.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)


# --------------------------------------------------------------------------------------------------
# Type normalisation
# --------------------------------------------------------------------------------------------------

def normalise_type(t: pa.DataType) -> pa.DataType:
    """The normalised form of an Arrow type (see ``normalise_arrow``)."""
    if pa.types.is_dictionary(t):
        return normalise_type(t.value_type)
    if pa.types.is_integer(t):
        return pa.int64()
    if pa.types.is_floating(t):
        return pa.float64()
    if pa.types.is_decimal(t):
        return pa.int64() if t.scale == 0 else pa.float64()
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if (pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t)
            or pa.types.is_fixed_size_binary(t)):
        return pa.binary()
    if pa.types.is_date(t):
        return pa.date32()
    if pa.types.is_timestamp(t):
        return pa.timestamp("us")
    if pa.types.is_time(t):
        return pa.time64("us")
    if (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
            or pa.types.is_list_view(t) or pa.types.is_large_list_view(t)):
        return pa.list_(normalise_type(t.value_type))
    if pa.types.is_map(t):
        return pa.map_(normalise_type(t.key_type), normalise_type(t.item_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(t.field(i).name, normalise_type(t.field(i).type)) for i in range(t.num_fields)])
    return t


def normalise_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([pa.field(f.name, normalise_type(f.type), nullable=True) for f in schema])


def normalise_arrow(table: pa.Table) -> pa.Table:
    """Normalise an engine's Arrow output so both engines give the same schema for the same SQL.

    Rules (applied recursively inside lists, maps and structs):

    ========================================  ===============================================
    input                                     normalised
    ========================================  ===============================================
    int8/16/32/64, uint8/16/32/64             int64 (uint64 above 2**63-1 raises)
    decimal(p, 0) (DuckDB SUM of integers     int64 (raises when a value does not fit)
    is HUGEINT, exported as decimal(38, 0))
    decimal(p, s>0)                           float64
    float16/32/64                             float64
    timestamp[any unit, any tz]               timestamp[us], naive = UTC wall clock
                                              (tz-aware values are converted to UTC; sub-us
                                              precision is truncated)
    date32/date64                             date32
    time32/time64                             time64[us]
    string/large_string/string_view           string
    binary/large_binary/binary_view/fixed     binary
    dictionary<T>                             normalised T (decoded)
    list/large_list/fixed_size_list<T>        list<item: normalised T>
    bool, null and anything else              unchanged
    ========================================  ===============================================

    Every field becomes nullable (Spark marks e.g. COUNT(*) NOT NULL, DuckDB does not) and schema /
    field metadata is dropped. Column names and order are unchanged.
    """
    target = normalise_schema(table.schema)
    arrays = []
    for field, col in zip(target, table.columns):
        if col.type == field.type:
            arrays.append(col)
            continue
        if pa.types.is_dictionary(col.type):
            col = pa.chunked_array([c.dictionary_decode() for c in col.chunks], type=col.type.value_type)
        # Timestamps: truncating sub-microsecond precision is intended; everything else is a checked cast.
        safe = not (pa.types.is_timestamp(col.type) or pa.types.is_time(col.type))
        arrays.append(pc.cast(col, field.type, safe=safe) if col.type != field.type else col)
    return pa.Table.from_arrays(arrays, schema=target)


# --------------------------------------------------------------------------------------------------
# Parity harness
# --------------------------------------------------------------------------------------------------

def _sortable(t: pa.DataType) -> bool:
    return not (pa.types.is_nested(t) or pa.types.is_null(t))


def _fmt(v) -> str:
    return repr(v)


def compare_tables(a: pa.Table, b: pa.Table, keys: Sequence[str] | None = None, rel: float = 1e-9,
                   abs_tol: float = 0.0, max_report: int = 10) -> list[str]:
    """Differences between two result tables; an empty list means they are equal.

    Both tables are normalised (``normalise_arrow``) and must have the same column names in the same
    order and the same types. Rows are matched after sorting both tables by ``keys`` (then by every other
    sortable column, floats last, so duplicate keys still line up); ``keys=None`` sorts by all columns.
    Floats are equal when both are NULL, both NaN, equal infinities, or
    ``|x - y| <= max(rel * max(|x|, |y|), abs_tol)``. Other values must be identical; NULL equals NULL.
    At most ``max_report`` cell differences are listed per column, followed by a count.
    """
    a, b = normalise_arrow(a), normalise_arrow(b)
    diffs: list[str] = []
    if a.column_names != b.column_names:
        return [f"columns differ: {a.column_names} vs {b.column_names}"]
    for fa, fb in zip(a.schema, b.schema):
        if fa.type != fb.type:
            diffs.append(f"column {fa.name!r}: type {fa.type} vs {fb.type}")
    if diffs:
        return diffs
    if a.num_rows != b.num_rows:
        return [f"row count: {a.num_rows} vs {b.num_rows}"]
    keys = list(keys) if keys is not None else []
    missing = [k for k in keys if k not in a.column_names]
    if missing:
        return [f"sort keys not in the tables: {missing}"]
    others = [c for c in a.column_names if c not in keys and _sortable(a.schema.field(c).type)]
    others.sort(key=lambda c: pa.types.is_floating(a.schema.field(c).type))
    order = [(c, "ascending") for c in keys + others]
    if order and a.num_rows:
        a = a.take(pc.sort_indices(a, sort_keys=order))  # nulls last (the default)
        b = b.take(pc.sort_indices(b, sort_keys=order))

    def where(i: int) -> str:
        if not keys:
            return f"row {i}"
        return f"row {i} (" + ", ".join(f"{k}={_fmt(a.column(k)[i].as_py())}" for k in keys) + ")"

    for name in a.column_names:
        ca, cb = a.column(name), b.column(name)
        t = ca.type
        if pa.types.is_floating(t):
            na = _np(pc.is_null(ca, nan_is_null=False), bool)
            nb = _np(pc.is_null(cb, nan_is_null=False), bool)
            xa = _np(ca.fill_null(0.0), np.float64)
            xb = _np(cb.fill_null(0.0), np.float64)
            with np.errstate(invalid="ignore", over="ignore"):
                close = np.abs(xa - xb) <= np.maximum(rel * np.maximum(np.abs(xa), np.abs(xb)), abs_tol)
                close |= (xa == xb) | (np.isnan(xa) & np.isnan(xb))
            ok = np.where(na | nb, na & nb, close)
            bad = np.flatnonzero(~ok)
        elif pa.types.is_null(t):
            bad = np.array([], dtype=np.int64)
        elif _sortable(t):
            eq = pc.equal(ca, cb)
            both_null = pc.and_(pc.is_null(ca), pc.is_null(cb))
            ok = pc.or_(pc.fill_null(eq, False), both_null)
            bad = np.flatnonzero(~_np(ok, bool))
        else:  # nested: compare as Python values (floats inside exactly, NaN-aware)
            la, lb = ca.to_pylist(), cb.to_pylist()
            bad = np.array([i for i, (x, y) in enumerate(zip(la, lb)) if not _py_equal(x, y, rel, abs_tol)],
                           dtype=np.int64)
        for i in bad[:max_report]:
            i = int(i)
            diffs.append(f"{where(i)} column {name!r}: {_fmt(ca[i].as_py())} vs {_fmt(cb[i].as_py())}")
        if len(bad) > max_report:
            diffs.append(f"column {name!r}: {len(bad) - max_report} more differences")
    return diffs


def _np(arr, dtype) -> np.ndarray:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=dtype)


def _py_equal(x, y, rel: float, abs_tol: float) -> bool:
    if isinstance(x, float) and isinstance(y, float):
        if math.isnan(x) and math.isnan(y):
            return True
        return math.isclose(x, y, rel_tol=rel, abs_tol=abs_tol)
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        return len(x) == len(y) and all(_py_equal(u, v, rel, abs_tol) for u, v in zip(x, y))
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_py_equal(x[k], y[k], rel, abs_tol) for k in x)
    return x == y


# --------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------

_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_GLOB_CHARS = set("*?[{")


def as_path_list(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """Paths as absolute strings (URLs such as s3://... are kept as they are)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out = []
    for p in paths:
        s = os.fspath(p)
        out.append(s if _SCHEME_RE.match(s) else os.path.abspath(s))
    if not out:
        raise ValueError("no Parquet paths given")
    return out


def hive_base_path(paths: Sequence[str]) -> str | None:
    """The folder above the first ``key=value`` (or globbed) path component, when all paths agree.

    ``/lake/pm/day=2024-01-01/part-0.parquet`` and ``/lake/pm/*/*.parquet`` both give ``/lake/pm``.
    Returns None when a path has no such component or the paths disagree.
    """
    bases = set()
    for p in paths:
        parts = p.split("/")
        cut = next((i for i, part in enumerate(parts[:-1]) if "=" in part or _GLOB_CHARS & set(part)), None)
        if cut is None:
            return None
        bases.add("/".join(parts[:cut]) or "/")
    return bases.pop() if len(bases) == 1 else None


def atomic_write_text(path: Path, text: str) -> None:
    """Write one file through a temporary sibling and a rename: readers see the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:10]}"
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling path (not yet created) to write into; on success swap it into place.

    The old content of ``path`` is renamed aside, the new folder renamed to ``path``, then the old one
    removed, so a failure while writing leaves ``path`` untouched and a re-run replaces (never appends).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:10]
    tmp = path.parent / f".{path.name}.tmp-{token}"
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"nothing was written for {path}")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists() or path.is_symlink():
        old = path.parent / f".{path.name}.old-{token}"
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------
# The interface
# --------------------------------------------------------------------------------------------------

class Engine(ABC):
    """A SQL engine that runs DuckDB-dialect SQL (translated as needed) over named tables.

    Names are plain identifiers. Results leave the engine normalised (``normalise_arrow``), and
    ``write_parquet`` writes the same normalised types, so both engines give the same files.
    Row order of results is whatever the engine gives: sort before comparing.
    """

    name: str = "?"

    @abstractmethod
    def register_parquet(self, name: str, paths: str | list[str], hive_partitioning: bool = True) -> None:
        """A view ``name`` over Parquet files or globs (one ``*`` per folder level on both engines).

        With ``hive_partitioning``, ``key=value`` folders become columns; ``day=YYYY-MM-DD`` becomes a
        DATE column ``day`` on both engines.
        """

    @abstractmethod
    def register_arrow(self, name: str, table: pa.Table) -> None:
        """A view ``name`` over an Arrow table."""

    @abstractmethod
    def create_table(self, name: str, sql: str) -> None:
        """Materialise the result of a SELECT (DuckDB dialect) as ``name``, replacing an existing one.

        Raises StepError (step = ``name``) when the SQL fails; the previous ``name`` is then kept.
        """

    @abstractmethod
    def query_arrow(self, sql: str) -> pa.Table:
        """Run a SELECT (DuckDB dialect) and return its normalised Arrow result."""

    @abstractmethod
    def table_arrow(self, name: str) -> pa.Table:
        """The normalised Arrow content of a table or view."""

    @abstractmethod
    def write_parquet(self, name: str, path: Path, partition_by: list[str] | None = None) -> None:
        """Write table ``name`` as a folder of Parquet files at ``path``, atomically (see ``atomic_dir``).

        With ``partition_by``, hive folders ``col=value``; the partition columns are then not stored
        in the files. An empty table gives one empty file carrying the schema.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the engine's resources."""

    def row_count(self, name: str) -> int:
        return int(self.query_arrow(f"SELECT COUNT(*) AS n FROM {check_name(name)}").column(0)[0].as_py())

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
