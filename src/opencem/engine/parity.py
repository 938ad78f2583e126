"""The parity harness: two engines' results are the same table (columns, types, rows; floats within a
relative tolerance). Used by the Spark-vs-DuckDB tests and benchmarks."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .base import normalise_arrow


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
