"""Validate an input file against its contract: typed valid rows plus a quarantine of bad ones.

A file that cannot be read at all, or lacks a required column, is rejected whole (ContractError).
A bad row never disappears: it goes to the quarantine with file, row, column, value and reason.
A value outside an open vocabulary (``Column.known``: care categories, survey triggers, area types)
is the operator's own: the row stays valid and the value is counted in ``ValidationResult.unknown``.
An optional column (``Column.optional``: a counter not every operator has) may be absent from a file: it
is read as NULL and listed in ``ValidationResult.absent``.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..engine import Engine, StepError, make_engine, quote_ident, quote_literal, sql_file
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
    valid: pa.Table | None  # None when the valid rows were written to a file instead
    rows: int  # valid rows
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


def _absent(names: list[str], contract: Table, source_file: str) -> list[str]:
    """The contract's columns the file lacks; a required one among them rejects the file."""
    missing = [c.name for c in contract.columns if c.name not in names and not c.optional]
    if missing:
        raise ContractError(f"{source_file}: missing column(s) {', '.join(map(repr, missing))} required by {contract.name}")
    return [c.name for c in contract.columns if c.name not in names]


def _checks(contract: Table) -> list[tuple[str, str, str]]:
    """Every rule as (column, SQL condition that flags a bad row, reason); the key's duplicate rule comes
    last with no condition (duplicates.sql finds those rows). Conditions see the raw value as "r:<column>"
    and the typed one as "<column>"; bounds are the contract's numbers, written into the SQL."""
    checks: list[tuple[str, str, str]] = []
    for c in contract.columns:
        col, raw_col = quote_ident(c.name), quote_ident("r:" + c.name)
        checks.append((c.name, f"{raw_col} IS NOT NULL AND {col} IS NULL", f"not a valid {c.dtype}"))
        if not c.nullable:
            checks.append((c.name, f"{raw_col} IS NULL", "missing value in a required column"))
        if c.dtype == "float64":  # 'nan', 'inf' and '1e309' read as numbers, and would poison every average
            checks.append((c.name, f"NOT isfinite({col})", "not a finite number"))
        if c.min is not None:
            checks.append((c.name, f"{col} < {float(c.min)!r}", f"below the minimum {c.min:g} {c.unit}"))
        if c.max is not None:
            checks.append((c.name, f"{col} > {float(c.max)!r}", f"above the maximum {c.max:g} {c.unit}"))
        if c.allowed:
            allowed = ", ".join(map(quote_literal, c.allowed))
            checks.append((c.name, f"{col} NOT IN ({allowed})", f"not one of {', '.join(c.allowed)}"))
    for chk in contract.checks:
        checks.append((chk.columns[0], f"NOT ({chk.sql})", chk.reason))
    if contract.key:
        checks.append((contract.key[0], "", f"duplicate key ({', '.join(contract.key)})"))
    return checks


def _typed(contract: Table) -> str:
    """The columns in their contract types; timestamps are kept to the millisecond (a finer fraction is cut)."""
    return ", ".join(f"CAST(date_trunc('millisecond', {quote_ident(c.name)}) AS TIMESTAMP_MS) AS {quote_ident(c.name)}"
                     if c.dtype == "timestamp" else quote_ident(c.name) for c in contract.columns)


def _validate(eng, contract: Table, source_file: str, absent: list[str]) -> tuple[pa.Table, dict]:
    """Validate the relation ``raw`` (the file's columns plus its 1-based row ``__row``) in ``eng``, and
    leave the view ``valid`` of the typed rows that break no rule. Every step is a view over the file, so
    a large file is scanned, not held in memory. Returns the quarantine and, per open-vocabulary column,
    the rows of each value outside OpenCEM's defaults."""
    checks = _checks(contract)
    rules = pa.table({"k": list(range(len(checks))), "column": [col for col, _, _ in checks],
                      "reason": [reason for _, _, reason in checks]})
    raw = ", ".join(f"{'CAST(NULL AS VARCHAR)' if c.name in absent else quote_ident(c.name)} AS {quote_ident('r:' + c.name)}"
                    for c in contract.columns)
    typed = ", ".join(f"TRY_CAST({quote_ident('r:' + c.name)} AS {DUCKDB_TYPES[c.dtype]}) AS {quote_ident(c.name)}"
                      for c in contract.columns)
    flags = ", ".join(f"CASE WHEN {cond} THEN {i} END" for i, (_, cond, _) in enumerate(checks) if cond)
    value = "CASE r.\"column\" " + " ".join(
        f"WHEN {quote_literal(c.name)} THEN CAST(bad.{quote_ident('r:' + c.name)} AS VARCHAR)"
        for c in contract.columns) + " END"
    eng.register_arrow("rules", rules)
    eng.create_view("typed", sql_file(_SQL, "typed").format(raw=raw, typed=typed))
    eng.create_view("validated", sql_file(_SQL, "validated").format(flags=flags))
    key = ", ".join(map(quote_ident, contract.key))
    eng.create_table("duplicates", sql_file(_SQL, "duplicates").format(key=key) if key else
                     "SELECT CAST(NULL AS BIGINT) AS __row WHERE false")  # no key, no duplicates
    quarantine = eng.query_arrow(sql_file(_SQL, "quarantine").format(value=value), {
        "duplicate_rule": len(checks) - 1, "table": contract.name, "source_file": source_file}, step="quarantine")
    eng.register_arrow("quarantined", quarantine.select(["row"]))
    eng.create_view("valid", sql_file(_SQL, "valid").format(columns=_typed(contract)))
    known = [c for c in contract.columns if c.known]
    unknown: dict[str, dict[str, int]] = {}
    if known:
        counts = " UNION ALL ".join(
            f"SELECT {quote_literal(c.name)} AS col, CAST({quote_ident(c.name)} AS VARCHAR) AS value, count(*) AS n FROM valid "
            f"WHERE {quote_ident(c.name)} NOT IN ({', '.join(map(quote_literal, c.known))}) GROUP BY ALL" for c in known)
        for r in eng.query_arrow(counts, step="values outside the defaults").to_pylist():
            unknown.setdefault(r["col"], {})[r["value"]] = r["n"]
    return quarantine.cast(QUARANTINE_SCHEMA), unknown


def _numbered(raw: pa.Table) -> pa.Table:
    return raw.append_column("__row", pa.array(range(1, raw.num_rows + 1), pa.int64()))


def _run(eng, names: list[str], contract: Table, source_file: str, write_to: Path | None = None,
         replace: tuple[str, str, dict] | None = None) -> ValidationResult:
    absent = _absent(names, contract, source_file)
    quarantine, unknown = _validate(eng, contract, source_file, absent)
    if write_to is None:
        valid = eng.query_arrow(_valid_rows(contract), step="valid")
        valid = pa.Table.from_arrays([valid[f.name].cast(f.type) for f in contract.arrow_schema], schema=contract.arrow_schema)
        return ValidationResult(contract.name, source_file, valid, valid.num_rows, quarantine, unknown, absent)
    rows = eng.export_parquet(_valid_rows(contract, replace), write_to, replace[2] if replace else None)
    return ValidationResult(contract.name, source_file, None, rows, quarantine, unknown, absent)


def _valid_rows(contract: Table, replace: tuple[str, str, dict] | None = None) -> str:
    """The valid rows in file order. The column of ``replace`` (column, SQL over it, parameters) is given by
    that SQL, computed once per distinct value: a file has far fewer subscribers than rows."""
    if not replace:
        return f"SELECT {', '.join(map(quote_ident, contract.column_names))} FROM valid ORDER BY __row"
    column, sql = quote_ident(replace[0]), replace[1]
    cols = ", ".join(f"m.__new AS {column}" if c == replace[0] else f"v.{quote_ident(c)}" for c in contract.column_names)
    return (f"WITH m AS (SELECT {column}, {sql} AS __new FROM (SELECT DISTINCT {column} FROM typed)) "
            f"SELECT {cols} FROM valid v LEFT JOIN m USING ({column}) ORDER BY v.__row")


def validate_table(raw: pa.Table, contract: Table | str, source_file: str) -> ValidationResult:
    contract = get(contract) if isinstance(contract, str) else contract
    with make_engine("duckdb") as eng:
        eng.register_arrow("raw", _numbered(raw))
        return _run(eng, raw.column_names, contract, source_file)


def validate_file(path: Path | str | list[Path], contract: Table | str, source_file: str | None = None, *,
                  write_to: Path | None = None, replace: tuple[str, str, dict] | None = None,
                  engine: Engine | None = None) -> ValidationResult:
    """Validate one file, or several Parquet files of one schema as one table (their rows in file order; a
    row's number is then not its line in one file); ``source_file`` is how messages name it (default: its name).

    A Parquet file is scanned by DuckDB where it lies (a CSV is read as text first). With ``write_to`` the
    valid rows go straight to that Parquet file instead of being returned (``valid`` is None), the column
    of ``replace`` = (column, SQL over it, its parameters) given by that SQL: the lake's pseudonym. ``engine``:
    a DuckDB engine to work in (its views of an earlier validation are replaced), else one of its own."""
    paths = [Path(p) for p in path] if isinstance(path, list) else [Path(path)]
    contract = get(contract) if isinstance(contract, str) else contract
    source_file = source_file or paths[0].name
    with nullcontext(engine) if engine else make_engine("duckdb") as eng:
        try:
            if paths[0].suffix == ".csv":
                raw = read_raw(paths[0], contract)
                names = raw.column_names
                eng.register_arrow("raw", _numbered(raw))
            else:
                files = f"[{', '.join(quote_literal(str(p)) for p in paths)}]"
                many = len(paths) > 1
                # by name, each column in a type every file's fits (a file missing a column reads NULL there)
                scan = f"read_parquet({files}, hive_partitioning = false, file_row_number = true{', filename = true, union_by_name = true' if many else ''})"
                # one number per row in file order: the file's place in the list, then the row's line in the file
                row = f"(CAST(list_position({files}, filename) - 1 AS BIGINT) << 32) + file_row_number + 1" if many else "file_row_number + 1"
                # many files (a stream's messages) are small and read once; one file is scanned where it lies
                (eng.create_table if many else eng.create_view)("raw", f"SELECT *, {row} AS __row FROM {scan}")
                names = [n for n in eng.query_arrow("DESCRIBE raw", step="read")["column_name"].to_pylist() if n != "__row"]
            return _run(eng, names, contract, source_file, write_to, replace)
        except StepError as e:  # the file could not be read through, whatever its footer promised
            raise ContractError(f"{source_file}: cannot read as {contract.name} ({e.error.splitlines()[0]})") from None


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
