"""The engine interface shared by DuckDB and Spark, plus the pieces both use.

* ``Engine``: the abstract interface (register inputs, materialise SELECTs, read results, write Parquet).
* ``StepError``: a failed step, naming the step, the SQL that ran (translated for Spark) and the engine's error.
* ``transpile``: DuckDB SQL -> the engine's dialect (SQLGlot, plus small fixes for constructs it gets wrong).
* ``normalise_arrow``: the type normalisation applied to every result leaving an engine, so that the same
  SQL gives the same Arrow schema on both engines.
* ``quote_ident`` / ``quote_literal``: the one pair of SQL quoting helpers.

File helpers live in ``files``, the parity harness in ``parity``.

See docs/engine.md for the portable SQL subset and the normalisation rules.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

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


def quote_ident(name: str, quote: str = '"') -> str:
    """An identifier quoted for SQL (``"`` for DuckDB, a backtick for Spark)."""
    return quote + name.replace(quote, quote * 2) + quote


def quote_literal(text: str) -> str:
    """A string literal for SQL; for the few places a value cannot be a parameter (DDL, COPY targets)."""
    return "'" + str(text).replace("'", "''") + "'"


def exact_sum(expr: str) -> str:
    """SQL for the sum of a real-valued expression in fixed point: exact, so the same in any order. A float
    sum depends on the order the engine's threads add in, and two runs on the same input must agree. Each
    term is held to 1e-9 in 64 bits (a daily sum of reports' RSRP, or sessions x 100, stays far under 1e9),
    which the engines add faster than 128-bit decimals; the sum itself is kept in 38 digits."""
    return f"CAST(sum(CAST({expr} AS DECIMAL(18, 9))) AS DOUBLE)"


Params = Mapping[str, object] | None  # named parameters: ``$name`` in the SQL, bound by the engine


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
    * ``list(x ORDER BY k)`` becomes ``COLLECT_LIST(x)``, its order lost: rewritten to sort
      ``(k, x)`` structs and keep ``x`` (a ``DESC`` key must be numeric: it is negated). With a
      ``FILTER``, a group with no row gives NULL, as in DuckDB, where Spark would give ``[]``.
    * ``first(x ORDER BY k)`` keeps its ORDER BY, which Spark cannot parse: rewritten to
      ``MIN_BY(x, STRUCT(k))`` (a ``DESC`` key must be numeric: it is negated).
    * ``isodow(x)`` becomes ``(DAYOFWEEK(x) % 7) + 1``, which on Spark (``DAYOFWEEK``: Sunday = 1) gives
      Saturday 1, Sunday 2, ..., Thursday 6, Friday 7: rewritten to ``(WEEKDAY(x) + 1)`` (Monday 1 ...
      Sunday 7, as DuckDB).
    * ``CAST('0x' || x AS BIGINT)``, hexadecimal text to an integer in DuckDB, is NULL or an error on Spark:
      rewritten to ``CAST(CONV(x, 16, 10) AS BIGINT)``.
    """
    from sqlglot import exp

    if isinstance(node, exp.Cast) and node.to.this == exp.DataType.Type.BIGINT:
        text = node.this.this if isinstance(node.this, exp.Paren) else node.this
        if isinstance(text, exp.DPipe) and isinstance(text.this, exp.Literal) and text.this.this == "0x":
            return _spark_expression(f"CAST(CONV({text.expression.sql(dialect='spark')}, 16, 10) AS BIGINT)")

    if isinstance(node, exp.DayOfWeekIso):
        return exp.Paren(this=exp.Add(this=exp.Anonymous(this="WEEKDAY", expressions=[node.this.copy()]),
                                      expression=exp.Literal.number(1)))

    if isinstance(node, exp.First) and isinstance(node.this, exp.Order):
        return _spark_expression(f"MIN_BY({node.this.this.sql(dialect='spark')}, STRUCT({', '.join(_sort_keys(node.this))}))")
    if isinstance(node, exp.Filter) and isinstance(node.this, exp.ArrayAgg) and isinstance(node.this.this, exp.Order):
        where = node.expression.this.sql(dialect="spark")
        arr = _sorted_list_sql(node.this.this, f" FILTER (WHERE {where})")
        return _spark_expression(f"CASE WHEN SIZE({arr}) > 0 THEN {arr} END")
    if isinstance(node, exp.ArrayAgg) and isinstance(node.this, exp.Order) and not isinstance(node.parent, exp.Filter):
        return _spark_expression(_sorted_list_sql(node.this, ""))
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


def _sorted_list_sql(order, filter_sql: str) -> str:
    """Spark SQL of DuckDB's ``list(value ORDER BY keys)`` (``order``: the parsed ``value ORDER BY keys``)."""
    from sqlglot import exp

    value, keys = order.this, order.expressions
    if isinstance(value, exp.Distinct):  # list(DISTINCT x ORDER BY x): the sorted set
        (v,) = value.expressions
        if len(keys) != 1 or keys[0].this != v or keys[0].args.get("desc"):
            raise ValueError("list(DISTINCT x ORDER BY ...) is translated for Spark only as list(DISTINCT x ORDER BY x)")
        return f"ARRAY_SORT(COLLECT_SET({v.sql(dialect='spark')}){filter_sql})"
    pairs = f"COLLECT_LIST(STRUCT({', '.join(_sort_keys(order))}, {value.sql(dialect='spark')} AS _v)){filter_sql}"
    return f"TRANSFORM(ARRAY_SORT({pairs}), e -> e._v)"


def _sort_keys(order) -> list[str]:
    """The ORDER BY keys of ``order`` as struct fields that sort ascending (a DESC key negated)."""
    return [f"{'-' if k.args.get('desc') else ''}({k.this.sql(dialect='spark')}) AS _k{i}" for i, k in enumerate(order.expressions)]


def _spark_expression(sql: str):
    import sqlglot

    return sqlglot.parse_one(sql, read="spark")


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
    def register_csv(self, name: str, paths: str | list[str]) -> None:
        """A view ``name`` over CSV files or globs with a header row, column types detected from the data
        (inputs that come as CSV: synthetic operators written as CSV, public reference measurements)."""

    @abstractmethod
    def create_table(self, name: str, sql: str, params: Params = None) -> None:
        """Materialise the result of a SELECT (DuckDB dialect) as ``name``, replacing an existing one.

        ``params`` binds the SQL's ``$name`` parameters (values are never pasted into SQL).
        Raises StepError (step = ``name``) when the SQL fails; the previous ``name`` is then kept.
        """

    @abstractmethod
    def create_view(self, name: str, sql: str) -> None:
        """A view ``name`` over a SELECT (DuckDB dialect), replacing an existing one; evaluated when read."""

    @abstractmethod
    def query_arrow(self, sql: str, params: Params = None, step: str = "query") -> pa.Table:
        """Run a SELECT (DuckDB dialect) and return its normalised Arrow result; ``step`` names it in errors."""

    @abstractmethod
    def drop(self, name: str) -> None:
        """Drop a table, view or registered Arrow table if it exists."""

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

    def query_row(self, sql: str, params: Params = None, step: str = "query") -> tuple:
        """The first row of a query as a tuple (None values when it has no row)."""
        t = self.query_arrow(sql, params, step)
        return tuple(t.column(i)[0].as_py() if t.num_rows else None for i in range(t.num_columns))

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
