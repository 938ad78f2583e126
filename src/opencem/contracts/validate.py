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
    typed = ", ".join(f"TRY_CAST({_q(c.name)} AS {DUCKDB_TYPES[c.dtype]}) AS {_q(c.name)}" for c in contract.columns)
    con.execute(f"CREATE TEMP TABLE typed AS SELECT __row, {typed} FROM src")

    checks: list[tuple[str, str, str, str]] = []  # (from, column, condition, reason)
    for c in contract.columns:
        col, t = _q(c.name), DUCKDB_TYPES[c.dtype]
        checks.append(("src", c.name, f"{col} IS NOT NULL AND TRY_CAST({col} AS {t}) IS NULL", f"not a valid {c.dtype}"))
        if not c.nullable:
            checks.append(("src", c.name, f"{col} IS NULL", "missing value in a required column"))
        if c.min is not None:
            checks.append(("typed", c.name, f"{col} < {c.min}", f"below the minimum {c.min:g} {c.unit}"))
        if c.max is not None:
            checks.append(("typed", c.name, f"{col} > {c.max}", f"above the maximum {c.max:g} {c.unit}"))
        if c.allowed:
            allowed = ", ".join("'" + a + "'" for a in c.allowed)
            checks.append(("typed", c.name, f"{col} NOT IN ({allowed})", f"not one of {', '.join(c.allowed)}"))
    for chk in contract.checks:
        checks.append(("typed", chk.columns[0], f"NOT ({chk.sql})", chk.reason))
    if contract.key:
        keys = ", ".join(map(_q, contract.key))
        checks.append(("(SELECT *, row_number() OVER (PARTITION BY " + keys + " ORDER BY __row) AS __dup FROM typed)",
                       contract.key[0], "__dup > 1", f"duplicate key ({', '.join(contract.key)})"))
    union = " UNION ALL ".join(
        f"SELECT __row AS row, '{col}' AS \"column\", CAST({_q(col)} AS VARCHAR) AS value, '{reason}' AS reason "
        f"FROM {frm} WHERE {cond}" for frm, col, cond, reason in checks)
    con.execute(f"CREATE TEMP TABLE bad AS {union}")
    lit = source_file.replace("'", "''")
    quarantine = con.sql(
        f"SELECT '{contract.name}' AS \"table\", '{lit}' AS source_file, row, \"column\", value, "
        "min(reason) AS reason FROM bad GROUP BY ALL ORDER BY row, \"column\"").to_arrow_table()
    valid = con.sql(
        f"SELECT {', '.join(map(_q, contract.column_names))} FROM typed "
        "WHERE __row NOT IN (SELECT row FROM bad) ORDER BY __row").to_arrow_table()
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
