"""Validate an input file against its contract: typed valid rows plus a quarantine of bad ones.

A file that cannot be read at all, or lacks a required column, is rejected whole (ContractError).
A bad row never disappears: it goes to the quarantine with file, row, column, value and reason.
A value outside an open vocabulary (``Column.known``: care categories, survey triggers, area types)
is the operator's own: the row stays valid and the value is counted in ``ValidationResult.unknown``.
An optional column (``Column.optional``: a counter not every operator has) may be absent from a file: it
is read as NULL and listed in ``ValidationResult.absent``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..engine import make_engine, quote_ident, quote_literal, sql_file
from . import get
from .base import DUCKDB_TYPES, Table

_SQL = "opencem.contracts"  # the SQL templates of validation: contracts/sql/*.sql

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
    unknown: dict[str, dict[str, int]] = field(default_factory=dict)  # column -> value outside `known` -> rows
    absent: list[str] = field(default_factory=list)  # optional columns the file does not have (read as NULL)

    @property
    def ok(self) -> bool:
        return self.quarantine.num_rows == 0

    def messages(self, limit: int = 20) -> list[str]:
        q = self.quarantine.slice(0, limit).to_pylist()
        return [f"{r['source_file']} row {r['row']} column '{r['column']}': {r['reason']} (value {r['value']!r})" for r in q]

    def warnings(self, limit: int = 5) -> list[str]:
        """One line per open-vocabulary column with values OpenCEM has no default meaning for, and one for
        the optional columns the file does not have."""
        out = [f"{self.source_file}: no column {', '.join(map(repr, self.absent))}; read as NULL, and what is computed "
               "from it is unavailable"] if self.absent else []
        for col, counts in self.unknown.items():
            top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            shown = ", ".join(f"{v!r} ({n:,} rows)" for v, n in top[:limit]) + (f" and {len(top) - limit} more" if len(top) > limit else "")
            out.append(f"{self.source_file} column '{col}': {len(top)} value(s) outside OpenCEM's defaults, kept as the operator's own: {shown}")
        return out


def read_csv_text(path: Path, delimiter: str = ",", encoding: str = "utf8") -> pa.Table:
    """A CSV with every column as text (typing is validation's job); empty cells are NULL."""
    opts, parse = pacsv.ReadOptions(encoding=encoding), pacsv.ParseOptions(delimiter=delimiter)
    with pacsv.open_csv(path, read_options=opts, parse_options=parse) as reader:  # the first block, for the header
        head = reader.schema.names
    return pacsv.read_csv(path, read_options=opts, parse_options=parse, convert_options=pacsv.ConvertOptions(
        column_types={c: pa.string() for c in head}, strings_can_be_null=True))


def read_raw(path: Path, contract: Table) -> pa.Table:
    """Read a file as it is: Parquet with its own types, CSV with every column as text."""
    try:
        return read_csv_text(path) if path.suffix == ".csv" else pq.read_table(path)
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as e:
        raise ContractError(f"{path.name}: cannot read as {contract.name} ({str(e).splitlines()[0]})") from None


def validate_table(raw: pa.Table, contract: Table | str, source_file: str) -> ValidationResult:
    contract = get(contract) if isinstance(contract, str) else contract
    missing = [c.name for c in contract.columns if c.name not in raw.column_names and not c.optional]
    if missing:
        raise ContractError(f"{source_file}: missing column(s) {', '.join(map(repr, missing))} required by {contract.name}")
    absent = [c.name for c in contract.columns if c.name not in raw.column_names]
    for name in absent:  # optional columns the file does not have: NULL
        raw = raw.append_column(name, pa.nulls(raw.num_rows, pa.string()))
    src = raw.select(contract.column_names).append_column("__row", pa.array(range(1, raw.num_rows + 1), pa.int64()))

    # Every rule as (column, SQL condition that flags a bad row, reason). Conditions see the raw
    # value as "r:<column>" and the typed one as "<column>"; bounds are parameters.
    checks: list[tuple[str, str, str]] = []
    bounds: dict[str, float] = {}

    def bound(value: float) -> str:
        bounds[f"bound_{len(bounds)}"] = value
        return f"$bound_{len(bounds) - 1}"

    for c in contract.columns:
        col, raw_col = quote_ident(c.name), quote_ident("r:" + c.name)
        checks.append((c.name, f"{raw_col} IS NOT NULL AND {col} IS NULL", f"not a valid {c.dtype}"))
        if not c.nullable:
            checks.append((c.name, f"{raw_col} IS NULL", "missing value in a required column"))
        if c.dtype == "float64":  # 'nan', 'inf' and '1e309' read as numbers, and would poison every average
            checks.append((c.name, f"NOT isfinite({col})", "not a finite number"))
        if c.min is not None:
            checks.append((c.name, f"{col} < {bound(c.min)}", f"below the minimum {c.min:g} {c.unit}"))
        if c.max is not None:
            checks.append((c.name, f"{col} > {bound(c.max)}", f"above the maximum {c.max:g} {c.unit}"))
        if c.allowed:
            allowed = ", ".join(map(quote_literal, c.allowed))
            checks.append((c.name, f"{col} NOT IN ({allowed})", f"not one of {', '.join(c.allowed)}"))
    for chk in contract.checks:
        checks.append((chk.columns[0], f"NOT ({chk.sql})", chk.reason))
    duplicate_rule = len(checks)
    if contract.key:
        checks.append((contract.key[0], "", f"duplicate key ({', '.join(contract.key)})"))
    rules = pa.table({"k": list(range(len(checks))), "column": [col for col, _, _ in checks],
                      "reason": [reason for _, _, reason in checks]})

    # One pass over the file: typed columns plus the indexes of the rules each row breaks.
    cast = ", ".join(f"{quote_ident(c.name)} AS {quote_ident('r:' + c.name)}, "
                     f"TRY_CAST({quote_ident(c.name)} AS {DUCKDB_TYPES[c.dtype]}) AS {quote_ident(c.name)}"
                     for c in contract.columns)
    flags = ", ".join(f"CASE WHEN {cond} THEN {i} END" for i, (_, cond, _) in enumerate(checks[:duplicate_rule]))
    value = "CASE r.\"column\" " + " ".join(
        f"WHEN {quote_literal(c.name)} THEN CAST(validated.{quote_ident('r:' + c.name)} AS VARCHAR)"
        for c in contract.columns) + " END"
    with make_engine("duckdb") as eng:
        eng.register_arrow("src", src)
        eng.register_arrow("rules", rules)
        eng.create_table("validated", sql_file(_SQL, "validated").format(cast=cast, flags=flags), bounds)
        if contract.key:
            eng.create_table("duplicates", sql_file(_SQL, "duplicates").format(key=", ".join(map(quote_ident, contract.key))))
        else:
            eng.create_table("duplicates", "SELECT CAST(NULL AS BIGINT) AS __row WHERE false")  # no key, no duplicates
        quarantine = eng.query_arrow(sql_file(_SQL, "quarantine").format(value=value), {
            "duplicate_rule": duplicate_rule, "table": contract.name, "source_file": source_file}, step="quarantine")
        valid = eng.query_arrow(sql_file(_SQL, "valid").format(columns=", ".join(map(quote_ident, contract.column_names))),
                                step="valid")
    # timestamps are kept to the millisecond: a finer fraction is cut, not a reason to fail
    valid = pa.Table.from_arrays([valid.column(f.name).cast(f.type, safe=not pa.types.is_timestamp(f.type))
                                  for f in contract.arrow_schema], schema=contract.arrow_schema)
    return ValidationResult(contract.name, source_file, valid, quarantine.cast(QUARANTINE_SCHEMA), _unknown(valid, contract), absent)


def _unknown(valid: pa.Table, contract: Table) -> dict[str, dict[str, int]]:
    """Per open-vocabulary column, the rows of each value outside its ``known`` list."""
    out = {}
    for c in contract.columns:
        if c.known:
            counts = pc.value_counts(valid[c.name].drop_null()).to_pylist() if valid.num_rows else []
            other = {r["values"]: r["counts"] for r in counts if r["values"] not in c.known}
            if other:
                out[c.name] = other
    return out


def validate_file(path: Path | str, contract: Table | str, source_file: str | None = None) -> ValidationResult:
    """Validate one file; ``source_file`` is how messages name it (default: its name)."""
    path = Path(path)
    contract = get(contract) if isinstance(contract, str) else contract
    return validate_table(read_raw(path, contract), contract, source_file or path.name)


def collapse_warnings(warnings: list[str]) -> list[str]:
    """One line for a warning that several files repeat (a counter no daily PM file has)."""
    by_text: dict[str, list[str]] = {}
    for w in warnings:
        source, _, text = w.partition(": ")
        by_text.setdefault(text, []).append(source)
    return [f"{files[0]}{f' and {len(files) - 1} more files' if len(files) > 1 else ''}: {text}" if text else files[0]
            for text, files in by_text.items()]


def inputs_folder(data: Path) -> Path:
    """The folder of input tables: ``data/inputs`` when there is one (a synth output), else ``data``."""
    data = Path(data)
    inputs = data / "inputs" if (data / "inputs").is_dir() else data
    if not inputs.is_dir():
        raise FileNotFoundError(f"{data} is not a folder of input tables")
    return inputs


def find_table_files(data_dir: Path, name: str) -> list[Path]:
    """Files holding one table: `name.parquet|csv`, or any under the folder `name/`."""
    files = [p for ext in ("parquet", "csv") for p in [data_dir / f"{name}.{ext}"] if p.exists()]
    folder = data_dir / name
    if folder.is_dir():
        files += sorted(p for p in folder.rglob("*") if p.suffix in (".parquet", ".csv"))
    return files
