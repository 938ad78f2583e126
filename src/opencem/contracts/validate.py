"""Validate an input file against its contract: typed valid rows plus a quarantine of bad ones.

A file that cannot be read at all, or lacks a required column, is rejected whole (ContractError).
A bad row never disappears: it goes to the quarantine with file, row, column, value and reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from . import get
from .base import DUCKDB_TYPES, Table

QUARANTINE_SCHEMA = pa.schema([
    ("table", pa.string()), ("source_file", pa.string()), ("row", pa.int64()),
    ("column", pa.string()), ("value", pa.string()), ("reason", pa.string()),
])


class ContractError(ValueError):
    """A whole file does not meet its contract; the message names the file and what is wrong."""


@dataclass
class ValidationResult:
    table: str
    source_file: str
    valid: pa.Table
    quarantine: pa.Table

    @property
    def ok(self) -> bool:
        return self.quarantine.num_rows == 0

    def messages(self, limit: int = 20) -> list[str]:
        q = self.quarantine.slice(0, limit).to_pylist()
        return [f"{r['source_file']} row {r['row']} column '{r['column']}': {r['reason']} (value {r['value']!r})" for r in q]


def read_raw(path: Path, contract: Table) -> pa.Table:
    """Read a file as it is: Parquet with its own types, CSV with every column as text."""
    try:
        if path.suffix == ".csv":
            with pacsv.open_csv(path) as reader:  # reads only the first block, for the header
                head = reader.schema.names
            return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in head}, strings_can_be_null=True))
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as e:
        raise ContractError(f"{path.name}: cannot read as {contract.name} ({str(e).splitlines()[0]})") from None


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def validate_table(raw: pa.Table, contract: Table | str, source_file: str) -> ValidationResult:
    contract = get(contract) if isinstance(contract, str) else contract
    missing = [c.name for c in contract.columns if c.name not in raw.column_names]
    if missing:
        raise ContractError(f"{source_file}: missing column(s) {', '.join(map(repr, missing))} required by {contract.name}")
    con = duckdb.connect()
    src = raw.select(contract.column_names).append_column("__row", pa.array(range(1, raw.num_rows + 1), pa.int64()))
    con.register("src", src)

    # Every rule as (column, SQL condition that flags a bad row, reason). Conditions see the raw
    # value as "r:<column>" and the typed one as "<column>".
    checks: list[tuple[str, str, str]] = []
    for c in contract.columns:
        col, raw_col = _q(c.name), _q("r:" + c.name)
        checks.append((c.name, f"{raw_col} IS NOT NULL AND {col} IS NULL", f"not a valid {c.dtype}"))
        if not c.nullable:
            checks.append((c.name, f"{raw_col} IS NULL", "missing value in a required column"))
        if c.min is not None:
            checks.append((c.name, f"{col} < {c.min}", f"below the minimum {c.min:g} {c.unit}"))
        if c.max is not None:
            checks.append((c.name, f"{col} > {c.max}", f"above the maximum {c.max:g} {c.unit}"))
        if c.allowed:
            allowed = ", ".join("'" + a + "'" for a in c.allowed)
            checks.append((c.name, f"{col} NOT IN ({allowed})", f"not one of {', '.join(c.allowed)}"))
    for chk in contract.checks:
        checks.append((chk.columns[0], f"NOT ({chk.sql})", chk.reason))

    # One pass over the file: typed columns plus the indexes of the rules each row breaks.
    cast = ", ".join(f"{_q(c.name)} AS {_q('r:' + c.name)}, TRY_CAST({_q(c.name)} AS {DUCKDB_TYPES[c.dtype]}) AS {_q(c.name)}"
                     for c in contract.columns)
    flags = ", ".join(f"CASE WHEN {cond} THEN {i} END" for i, (_, cond, _) in enumerate(checks))
    con.execute(f"CREATE TEMP TABLE t AS WITH c AS (SELECT __row, {cast} FROM src) "
                f"SELECT *, list_filter([{flags}], lambda x: x IS NOT NULL) AS __fails FROM c")
    dup = len(checks)
    if contract.key:
        keys = ", ".join(map(_q, contract.key))
        checks.append((contract.key[0], "", f"duplicate key ({', '.join(contract.key)})"))
        con.execute(f"CREATE TEMP TABLE dup AS SELECT __row FROM (SELECT __row, row_number() OVER "
                    f"(PARTITION BY {keys} ORDER BY __row) AS n FROM t) WHERE n > 1")
    else:
        con.execute("CREATE TEMP TABLE dup (__row BIGINT)")
    con.execute("CREATE TEMP TABLE rules (k INTEGER, \"column\" VARCHAR, reason VARCHAR)")
    con.executemany("INSERT INTO rules VALUES (?, ?, ?)", [(i, col, reason) for i, (col, _, reason) in enumerate(checks)])
    value = "CASE r.\"column\" " + " ".join(
        f"WHEN '{c.name}' THEN CAST(t.{_q('r:' + c.name)} AS VARCHAR)" for c in contract.columns) + " END"
    lit = source_file.replace("'", "''")
    quarantine = con.sql(f"""
        WITH bad AS (SELECT __row, unnest(__fails) AS k FROM t WHERE len(__fails) > 0
                     UNION ALL SELECT __row, {dup} FROM dup)
        SELECT '{contract.name}' AS "table", '{lit}' AS source_file, bad.__row AS row, r."column",
               {value} AS value, min(r.reason) AS reason
        FROM bad JOIN rules r USING (k) JOIN t USING (__row)
        GROUP BY ALL ORDER BY row, r."column"
        """).to_arrow_table()
    valid = con.sql(
        f"SELECT {', '.join(map(_q, contract.column_names))} FROM t "
        "WHERE len(__fails) = 0 AND __row NOT IN (SELECT __row FROM dup) ORDER BY __row").to_arrow_table()
    valid = pa.Table.from_arrays([valid.column(f.name).cast(f.type) for f in contract.arrow_schema],
                                 schema=contract.arrow_schema)
    return ValidationResult(contract.name, source_file, valid, quarantine.cast(QUARANTINE_SCHEMA))


def validate_file(path: Path | str, contract: Table | str) -> ValidationResult:
    path = Path(path)
    contract = get(contract) if isinstance(contract, str) else contract
    return validate_table(read_raw(path, contract), contract, path.name)


def find_table_files(data_dir: Path, name: str) -> list[Path]:
    """Files holding one table: `name.parquet|csv`, or any under the folder `name/`."""
    files = [p for ext in ("parquet", "csv") for p in [data_dir / f"{name}.{ext}"] if p.exists()]
    folder = data_dir / name
    if folder.is_dir():
        files += sorted(p for p in folder.rglob("*") if p.suffix in (".parquet", ".csv"))
    return files
