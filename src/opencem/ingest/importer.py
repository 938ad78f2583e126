"""`opencem import`: an operator's own tables, through a mapping, into OpenCEM's contracts.

Each source file is read as it is (CSV as text, Parquet with its types, PM XML pivoted to one row per
object and period), its columns renamed, units converted, local times moved to UTC and values given
their meaning, all in one SQL pass. The result is then validated against the contract: a value that
could not be read or converted keeps its original text, so the quarantine shows the operator's own
value with its source file and row. Nothing is dropped silently.

The output folder is written beside the old one and swapped in at the end: a failed import leaves the
previous output as it was, and a re-run on the same input writes the same files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from .. import contracts
from ..contracts.base import Table
from ..contracts.validate import QUARANTINE_SCHEMA, ValidationResult, collapse_warnings, read_csv_text, validate_table
from ..engine import make_engine, quote_ident
from ..engine.files import atomic_dir
from ..errors import InputError
from .lake import set_aside
from .mapping import Mapping, TableMap, load_mapping
from .pm_xml import PmFileRejected, read_pm_xml
from .units import conversion_sql

REPORT_FOLDER = "_import"  # the import's own report and quarantine, beside the tables
# A timestamp written with its offset ("...+05:30", "...Z") is exact; one without is local time in the zone.
_HAS_OFFSET = r"(Z|[+-]\d\d(:?\d\d)?)$"


@dataclass
class TableImport:
    table: str
    files: list[str] = field(default_factory=list)
    rows: int = 0
    quarantined: int = 0
    rejected: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _sources(root: Path, t: TableMap) -> list[Path]:
    found: set[Path] = set()
    for pattern in t.files:
        found.update(p for p in root.glob(pattern) if p.is_file())
    return sorted(found)


def _read(path: Path, t: TableMap) -> pa.Table:
    fmt = t.format or {".csv": "csv", ".parquet": "parquet", ".xml": "pm_xml", ".gz": "pm_xml"}.get(path.suffix)
    try:
        if fmt == "csv":
            return read_csv_text(path, t.delimiter, t.encoding)
        if fmt == "parquet":
            return pq.read_table(path)
        if fmt == "pm_xml":
            return _pivot_pm(read_pm_xml(path))
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError, LookupError) as e:
        raise InputError(f"{path.name}: cannot read as {fmt} ({str(e).splitlines()[0]})") from None
    raise InputError(f"{path.name}: unknown format; set format: csv, parquet or pm_xml in the mapping")


def _pivot_pm(long: pa.Table) -> pa.Table:
    """3GPP PM XML (one row per counter value) -> one row per measured object and period, a column per counter.
    ``cell_id`` is the value of the object's last relative name (the cell's own name in every vendor's DN);
    ``measObjLdn`` keeps the whole name for a mapping that wants it. Array counters (per-index values) are
    left out: the PM contract has none."""
    long = long.filter(pc.is_null(long["array_index"]))
    counters = sorted(pc.unique(long["counter"]).to_pylist())
    agg = ", ".join(f"max(value) FILTER (WHERE counter = {i}) AS {quote_ident(c)}" for i, c in enumerate(counters))
    with make_engine("duckdb") as eng:
        eng.register_arrow("pm_long", long.set_column(long.schema.get_field_index("counter"), "counter",
                                                      pc.index_in(long["counter"], pa.array(counters))))
        return eng.query_arrow(
            f"SELECT meas_obj_ldn AS measObjLdn, regexp_extract(meas_obj_ldn, '=([^=,]*)$', 1) AS cell_id, "
            f"period_start, granularity_s, {agg} FROM pm_long GROUP BY ALL ORDER BY measObjLdn, period_start",
            step="pivot PM XML")


def _column_sql(contract: Table, t: TableMap, name: str, zone: str, present: set[str], params: dict) -> str | None:
    """The SQL giving one contract column as text from the operator's file, or None if the file lacks it."""
    cm = t.column(name)
    if cm.source not in present:
        return None
    col = contract.column(name)

    def param(value) -> str:
        params[f"p{len(params)}"] = value
        return f"$p{len(params) - 1}"

    text = f"CAST({quote_ident(cm.source)} AS VARCHAR)"
    if cm.values:
        cases = " ".join(f"WHEN {param(k)} THEN {param(v)}" for k, v in cm.values.items())
        text = f"(CASE {text} {cases} ELSE {text} END)"
    value = None
    if col.dtype == "timestamp":
        if cm.format:
            local = f"try_strptime({text}, {param(cm.format)})"
        elif cm.unit:  # seconds / milliseconds since the epoch
            local = f"make_timestamp(CAST(round({conversion_sql(f'TRY_CAST({text} AS DOUBLE)', cm.unit, 's')} * 1e6) AS BIGINT))"
        else:
            local = f"TRY_CAST({text} AS TIMESTAMP)"
        value = (f"CASE WHEN regexp_matches({text}, '{_HAS_OFFSET}') THEN timezone('UTC', TRY_CAST({text} AS TIMESTAMPTZ)) "
                 f"ELSE timezone('UTC', timezone({param(zone)}, {local})) END")
    elif col.dtype == "date" and cm.format:
        value = f"CAST(try_strptime({text}, {param(cm.format)}) AS DATE)"
    elif cm.unit:
        value = conversion_sql(f"TRY_CAST({text} AS DOUBLE)", cm.unit, col.unit)
        if col.dtype in ("int64", "int32"):
            value = f"round({value})"
    # a value that cannot be read keeps its text, so validation quarantines it with the operator's value
    return text if value is None else f"COALESCE(CAST({value} AS VARCHAR), {text})"


def _map_file(raw: pa.Table, contract: Table, t: TableMap, zone: str, source_file: str) -> ValidationResult:
    present = set(raw.column_names)
    params: dict = {}
    selected = []
    for c in contract.columns:
        sql = _column_sql(contract, t, c.name, zone, present, params)
        if sql is not None:
            selected.append(f"{sql} AS {quote_ident(c.name)}")
        elif not c.optional:
            source = t.column(c.name).source
            raise InputError(f"{source_file}: no column {source!r} (mapped to {contract.name}.{c.name}, which is required)")
    raw = raw.append_column("__source_row", pa.array(range(raw.num_rows), pa.int64()))
    with make_engine("duckdb") as eng:
        eng.register_arrow("src", raw)
        mapped = eng.query_arrow(f"SELECT {', '.join(selected)} FROM src ORDER BY __source_row", params,
                                 step=f"map {source_file}")
    return validate_table(mapped, contract, source_file)


def _write(table: pa.Table, contract: Table, folder: Path, part: int) -> None:
    """One source file's valid rows, partitioned by day like the synthetic operator's inputs."""
    if contract.partition_by:
        day = pc.strftime(table[contract.partition_by], format="%Y-%m-%d")
        pads.write_dataset(table.append_column("day", day), folder / contract.name, format="parquet",
                           partitioning=["day"], partitioning_flavor="hive", basename_template=f"part-{part:05d}-{{i}}.parquet",
                           existing_data_behavior="overwrite_or_ignore")
    else:
        (folder / contract.name).mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / contract.name / f"part-{part:05d}.parquet")


def import_tables(source: Path, mapping: Path | Mapping, out: Path,
                  progress: Callable[[str, int, int], None] | None = None) -> list[TableImport]:
    source, out = Path(source), Path(out)
    m = mapping if isinstance(mapping, Mapping) else load_mapping(mapping)
    if not source.is_dir():
        raise InputError(f"{source} is not a folder")
    if out.exists() and any(out.iterdir()) and not (out / REPORT_FOLDER / "report.json").exists():
        raise InputError(f"{out} exists and is not an earlier import's output; choose a new folder")
    files = {name: _sources(source, t) for name, t in m.tables.items()}
    jobs = [(name, t, f) for name, t in m.tables.items() for f in files[name]]
    results = {name: TableImport(name) for name in m.tables}
    for name, t in m.tables.items():
        if not files[name]:
            results[name].warnings.append(f"{name}: no file matches {', '.join(t.files)} under {source}")
    quarantine = []
    with atomic_dir(out) as tmp:
        tmp.mkdir(parents=True)
        for i, (name, t, f) in enumerate(jobs):
            if progress:
                progress(f"import {name}", i, len(jobs))
            rel = f.relative_to(source).as_posix()
            res, contract = results[name], contracts.get(name)
            res.files.append(rel)
            try:
                v = _map_file(_read(f, t), contract, t, m.zone(name), rel)
            except (InputError, PmFileRejected) as e:  # a file that cannot be read or lacks a column: set aside whole
                res.rejected.append(str(e))
                set_aside(f, tmp / REPORT_FOLDER / "rejected" / rel, str(e))
                continue
            _write(v.valid, contract, tmp, i)
            res.rows += v.valid.num_rows
            res.quarantined += v.quarantine.num_rows
            res.warnings += v.warnings()
            quarantine.append(v.quarantine)
        for r in results.values():
            r.warnings = collapse_warnings(r.warnings)
        report = tmp / REPORT_FOLDER
        report.mkdir(exist_ok=True)
        pq.write_table(pa.concat_tables(quarantine) if quarantine else QUARANTINE_SCHEMA.empty_table(),
                       report / "quarantine.parquet")
        (report / "report.json").write_text(json.dumps([asdict(r) for r in results.values()], indent=2) + "\n")
    if progress:
        progress("import", len(jobs), len(jobs))
    return list(results.values())

