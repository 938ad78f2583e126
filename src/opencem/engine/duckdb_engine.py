"""DuckDB engine: embedded, the default. SQL runs as written (the pipeline's SQL is DuckDB dialect)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb
import pyarrow as pa

from ..errors import InputError
from .base import Engine, Params, StepError, check_name, normalise_arrow
from .base import quote_ident as _q
from .base import quote_literal as _lit
from .files import as_path_list, atomic_dir


def _strip(sql: str) -> str:
    return sql.strip().rstrip(";").strip()


def _to_arrow(rel) -> pa.Table:
    # duckdb 2.x: to_arrow_table(); 1.x: fetch_arrow_table() (arrow() returns a reader in 2.x)
    fn = getattr(rel, "to_arrow_table", None) or rel.fetch_arrow_table
    return fn()


_TO_BIGINT = re.compile(r"^(TINYINT|SMALLINT|INTEGER|BIGINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|HUGEINT|UHUGEINT)$")
_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")


def _normalised_cast(column_type: str) -> str | None:
    """The SQL type a column is cast to when written (mirrors normalise_arrow); None keeps it."""
    t = column_type.upper()
    if t == "BIGINT":
        return None
    if _TO_BIGINT.match(t):
        return "BIGINT"
    m = _DECIMAL.match(t)
    if m:
        return "BIGINT" if int(m.group(2)) == 0 else "DOUBLE"
    if t in ("FLOAT", "REAL", "FLOAT4"):
        return "DOUBLE"
    if t in ("TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "TIMESTAMP WITH TIME ZONE"):
        return "TIMESTAMP"  # the session time zone is UTC, so TIMESTAMPTZ becomes the UTC wall clock
    return None


# Overrides of the resources DuckDB is given (otherwise set from the machine, see resources())
MEMORY_LIMIT_ENV, THREADS_ENV, SPILL_DIR_ENV = "OPENCEM_MEMORY_LIMIT", "OPENCEM_THREADS", "OPENCEM_SPILL_DIR"
# of the machine's memory: the rest is for Python, Arrow buffers and the page cache. DuckDB's limit bounds its
# buffer manager, not every allocation: at 1M x 7 the measure stage peaked 0.3-0.7 GB above it.
MEMORY_SHARE = 0.2


def resources(threads: int | None = None, memory_limit: str | None = None, spill_dir: str | Path | None = None) -> dict:
    """DuckDB's threads, memory limit and spill directory: the arguments, else the environment
    (OPENCEM_THREADS, OPENCEM_MEMORY_LIMIT such as '4GB', OPENCEM_SPILL_DIR), else the machine's cores,
    a fifth of its memory and DuckDB's own temporary folder. Past the limit, DuckDB spills to disk."""
    threads = threads or int(os.environ.get(THREADS_ENV, 0)) or os.cpu_count() or 1
    if not memory_limit:
        memory_limit = os.environ.get(MEMORY_LIMIT_ENV) or f"{max(1, int(machine_memory() * MEMORY_SHARE / 2**20))}MiB"
    spill_dir = spill_dir or os.environ.get(SPILL_DIR_ENV)
    return {"threads": threads, "memory_limit": memory_limit, "spill_dir": str(spill_dir) if spill_dir else None}


def machine_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


class DuckDBEngine(Engine):
    """An embedded DuckDB database (in memory by default). The session time zone is UTC; threads,
    memory limit and spill directory come from :func:`resources`. ``scratch``: the database is a file
    of this session only, deleted on close. ``compress=False``: tables are not compressed at DuckDB's
    automatic checkpoints, for a session of many small tables replaced often (a stream's batches)."""

    name = "duckdb"

    def __init__(self, database: str | Path = ":memory:", threads: int | None = None,
                 memory_limit: str | None = None, spill_dir: str | Path | None = None, scratch: bool = False,
                 compress: bool = True):
        self.database = str(database)
        self._scratch = scratch
        if scratch:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            Path(database).unlink(missing_ok=True)  # left by a session that was killed
        self.con = duckdb.connect(self.database)
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("SET enable_progress_bar = false")
        self.resources = resources(threads, memory_limit, spill_dir)
        self.con.execute(f"SET threads = {int(self.resources['threads'])}")
        try:
            self.con.execute(f"SET memory_limit = {_lit(self.resources['memory_limit'])}")
        except duckdb.Error as e:
            source = "memory_limit" if memory_limit else MEMORY_LIMIT_ENV
            raise InputError(f"{source}={self.resources['memory_limit']!r} is not a memory size DuckDB reads (e.g. '4GB')") from e
        if self.resources["spill_dir"]:
            self.con.execute(f"SET temp_directory = {_lit(self.resources['spill_dir'])}")
        if not compress:  # a checkpoint (after every 16 MiB of changes) compresses the tables: 0.4 s at 100k subscribers
            self.con.execute("SET checkpoint_threshold = '1TB'")
        self._arrow: dict[str, pa.Table] = {}  # name (lower case) -> registered Arrow table
        # what each name this engine made is: "view", "table" or "arrow". A name made again as the same kind
        # is replaced in one statement (CREATE OR REPLACE), where dropping it as a view, failing, dropping it
        # as a table and renaming a new table into place took five (a stream batch makes some 30 tables)
        self._kinds: dict[str, str] = {}

    # -- helpers ---------------------------------------------------------------------------------

    def _drop(self, name: str) -> None:
        key = name.lower()
        kind = self._kinds.pop(key, None)
        if key in self._arrow:
            self.con.unregister(name)
            del self._arrow[key]
        elif kind in ("view", "table"):
            self.con.execute(f"DROP {kind.upper()} IF EXISTS {_q(name)}")
        else:
            try:  # asking the catalog for the kind first would cost 4 ms a drop in a session with many views
                self.con.execute(f"DROP VIEW IF EXISTS {_q(name)}")
            except duckdb.CatalogException:  # the name is a table
                self.con.execute(f"DROP TABLE IF EXISTS {_q(name)}")

    def _view(self, name: str, body: str) -> None:
        key = name.lower()
        if self._kinds.get(key) == "view":  # one statement; a failed one leaves the view as it was
            self.con.execute(f"CREATE OR REPLACE VIEW {_q(name)} AS\n{body}\n")
        else:
            self._drop(name)
            self.con.execute(f"CREATE VIEW {_q(name)} AS\n{body}\n")
        self._kinds[key] = "view"

    def _columns(self, relation_sql: str) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in self.con.execute(f"DESCRIBE {relation_sql}").fetchall()]

    # -- interface -------------------------------------------------------------------------------

    def register_parquet(self, name: str, paths: str | list[str], hive_partitioning: bool = True) -> None:
        check_name(name)
        files = ", ".join(_lit(p) for p in as_path_list(paths))
        src = f"read_parquet([{files}], hive_partitioning = {'true' if hive_partitioning else 'false'})"
        cols = dict(self._columns(f"SELECT * FROM {src}"))
        select = "*"
        if hive_partitioning and "day" in cols and cols["day"].upper() != "DATE":
            select = "* REPLACE (CAST(day AS DATE) AS day)"
        self._view(name, f"SELECT {select} FROM {src}")

    def register_csv(self, name: str, paths: str | list[str]) -> None:
        check_name(name)
        files = ", ".join(_lit(p) for p in as_path_list(paths))
        self._view(name, f"SELECT * FROM read_csv([{files}], header = true)")

    def register_arrow(self, name: str, table: pa.Table) -> None:
        check_name(name)
        self._drop(name)
        self.con.register(name, table)
        self._arrow[name.lower()] = table
        self._kinds[name.lower()] = "arrow"

    def create_table(self, name: str, sql: str, params: Params = None) -> None:
        check_name(name)
        key, args = name.lower(), dict(params) if params else None
        if self._kinds.get(key) == "table":  # one statement; a failed one leaves the table as it was
            try:
                self.con.execute(f"CREATE OR REPLACE TABLE {_q(name)} AS\n{_strip(sql)}\n", args)
            except duckdb.Error as e:
                raise StepError(name, sql, e, self.name) from e
            return
        # a new name, or one of another kind the query may read: built aside, then put in its place
        tmp = f"__opencem_new_{name}"
        try:
            self.con.execute(f"DROP TABLE IF EXISTS {_q(tmp)}")
            self.con.execute(f"CREATE TABLE {_q(tmp)} AS\n{_strip(sql)}\n", args)
        except duckdb.Error as e:
            self.con.execute(f"DROP TABLE IF EXISTS {_q(tmp)}")
            raise StepError(name, sql, e, self.name) from e
        self._drop(name)
        self.con.execute(f"ALTER TABLE {_q(tmp)} RENAME TO {_q(name)}")
        self._kinds[key] = "table"

    def replace_rows(self, name: str, rows_sql: str, keys_from: str | None = None, keys: tuple[str, ...] = ()) -> None:
        """Table ``name`` with its rows whose ``keys`` are in table ``keys_from`` deleted (none without it) and the
        rows of ``rows_sql`` inserted, by column name; in place, so its cost is that of those rows, not of the table
        (the stream's held days)."""
        check_name(name)
        try:
            if keys_from:
                on = " AND ".join(f"{_q(name)}.{_q(k)} = k.{_q(k)}" for k in keys)
                self.con.execute(f"DELETE FROM {_q(name)} USING {_q(check_name(keys_from))} k WHERE {on}")
            self.con.execute(f"INSERT INTO {_q(name)} BY NAME\n{_strip(rows_sql)}\n")
        except duckdb.Error as e:
            raise StepError(name, rows_sql, e, self.name) from e

    def create_view(self, name: str, sql: str) -> None:
        check_name(name)
        try:
            self._view(name, _strip(sql))
        except duckdb.Error as e:
            raise StepError(name, sql, e, self.name) from e

    def query_arrow(self, sql: str, params: Params = None, step: str = "query") -> pa.Table:
        try:
            rel = self.con.sql(_strip(sql), params=dict(params) if params else None)
            if rel is None:
                raise ValueError("query_arrow needs a statement that returns rows (a SELECT)")
            return normalise_arrow(_to_arrow(rel))
        except duckdb.Error as e:
            raise StepError(step, sql, e, self.name) from e

    def drop(self, name: str) -> None:
        self._drop(check_name(name))

    def table_arrow(self, name: str) -> pa.Table:
        return self.query_arrow(f"SELECT * FROM {_q(check_name(name))}")

    def row_count(self, name: str) -> int:
        # fetchall: a result left unfinished (fetchone) blocks the connection's next query on duckdb 2.x
        return int(self.con.execute(f"SELECT COUNT(*) FROM {_q(check_name(name))}").fetchall()[0][0])

    def write_parquet(self, name: str, path: Path, partition_by: list[str] | None = None) -> None:
        check_name(name)
        cols = self._columns(f"SELECT * FROM {_q(name)}")
        select = ", ".join(
            f"CAST({_q(c)} AS {cast}) AS {_q(c)}" if (cast := _normalised_cast(t)) else _q(c) for c, t in cols
        )
        query = f"SELECT {select} FROM {_q(name)}"
        parts = list(partition_by or [])
        unknown = [p for p in parts if p not in {c for c, _ in cols}]
        if unknown:
            raise ValueError(f"partition columns {unknown} are not columns of {name}")
        with atomic_dir(Path(path)) as tmp:
            tmp.mkdir(parents=True)
            if parts and self.row_count(name) > 0:
                by = ", ".join(_q(p) for p in parts)
                self.con.execute(f"COPY ({query}) TO {_lit(str(tmp))} (FORMAT parquet, PARTITION_BY ({by}))")
            else:  # unpartitioned, or empty: one file that carries the schema
                self.con.execute(f"COPY ({query}) TO {_lit(str(tmp / 'part-0.parquet'))} (FORMAT parquet)")

    def export_parquet(self, sql: str, path: Path, params: Params = None) -> int:
        """One SELECT's rows as one Parquet file (zstd), in the types the SELECT gives and its order;
        returns the rows written. DuckDB only: ingest writes each file of the lake with it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        copy = f"COPY ({_strip(sql)}) TO {_lit(str(path))} (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)"
        try:
            return int(self.con.execute(copy, dict(params) if params else None).fetchall()[0][0])
        except duckdb.Error as e:
            raise StepError(f"write {path.name}", sql, e, self.name) from e

    def close(self) -> None:
        try:
            self.con.close()
        except duckdb.Error:
            pass
        if self._scratch:
            for path in (Path(self.database), Path(self.database + ".wal")):
                path.unlink(missing_ok=True)
