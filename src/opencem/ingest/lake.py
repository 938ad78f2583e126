"""Ingest: input files -> validated, pseudonymised Parquet lake, with quarantine and rejects.

Every input file is validated against its contract. Bad rows go to `WS/quarantine/<table>.parquet`
with file, row, column, value and reason; a file that cannot be read or lacks a column is copied to
`WS/rejected/` under its path in the inputs, with a `.reason.txt`. The new lake is written beside the old one and swapped in
at the end, so a failed ingest leaves the previous lake untouched.

`lake/_ingested.json` lists every input file in the lake with its size and modification time. With
``new_only``, a file listed there unchanged is not read again: only new or changed files are ingested
and moved into the lake beside the others, and the report names the days they hold, which are the only
days measure then recomputes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..contracts import TABLES
from ..contracts.validate import (ContractError, ValidationResult, collapse_warnings, find_table_files, inputs_folder,
                                  validate_file)
from ..engine import make_engine, quote_ident
from ..engine.files import atomic_write_text
from ..workspace import Workspace
from .pm_xml import PmFileRejected, read_pm_xml
from .pseudonym import Pseudonymiser

PM_XML_FOLDER = "pm_xml"
MANIFEST = "_ingested.json"  # in the lake: input file -> [size, modification time in ns] when ingested
STREAMED_PREFIX = "stream-"  # lake/<table>/day=D/stream-<batch>.parquet: records `opencem stream` added


@dataclass
class IngestReport:
    rows: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # per file: values outside OpenCEM's defaults, absent optional columns
    new_only: bool = False  # only new or changed files were read (False: the lake was rebuilt from all inputs)
    skipped: int = 0  # input files already in the lake, unchanged
    days: list[dt.date] = field(default_factory=list)  # new_only: the days of the day-partitioned files read


def ingest(inputs: Path, workspace: Path, key: bytes, progress: Callable[[str, int, int], None] | None = None,
           new_only: bool = False) -> IngestReport:
    inputs, ws = inputs_folder(inputs), Workspace(workspace)
    jobs = [(name, f) for name in TABLES for f in find_table_files(inputs, name)]
    manifest_path = ws.lake / MANIFEST
    new_only = new_only and manifest_path.exists()  # a first run ingests everything
    manifest = json.loads(manifest_path.read_text()) if new_only else {}
    xml = sorted((inputs / PM_XML_FOLDER).glob("*.xml")) if (inputs / PM_XML_FOLDER).is_dir() else []
    if not jobs:
        raise FileNotFoundError(f"no input tables in {inputs} (expected subscribers.parquet, xdr/, ...)")
    for required in ("subscribers", "xdr"):
        if not any(n == required for n, _ in jobs):
            raise FileNotFoundError(f"{inputs}: required table {required!r} not found")

    lake_new = ws.root / ".lake.partial"
    shutil.rmtree(lake_new, ignore_errors=True)
    rejected_dir = ws.root / "rejected"
    shutil.rmtree(rejected_dir, ignore_errors=True)
    report = IngestReport(new_only=new_only)
    if new_only:
        def seen(f: Path) -> bool:
            return manifest.get(f.relative_to(inputs).as_posix()) == _stamp(f)

        report.skipped = sum(seen(f) for _, f in jobs)
        jobs = [(n, f) for n, f in jobs if not seen(f)]
        if all(seen(f) for f in xml):  # PM XML is one table in the lake: read again whole when one file is new
            report.skipped += len(xml)
            xml = []
    quarantine: dict[str, list[pa.Table]] = {}
    total = len(jobs) + len(xml)

    pseudonym = Pseudonymiser(key).sql(quote_ident("subscriber_id"))

    def one(job: tuple[str, Path]) -> tuple[str, Path, ValidationResult | None, str | None]:
        """DuckDB reads, checks, pseudonymises and writes one file; returns its result or why it was rejected."""
        name, f = job
        out = _lake_path(lake_new, inputs, name, f)
        replace = ("subscriber_id", *pseudonym) if "subscriber_id" in TABLES[name].column_names else None
        try:
            return name, f, validate_file(f, name, f.relative_to(inputs).as_posix(), write_to=out, replace=replace), None
        except ContractError as e:
            out.unlink(missing_ok=True)  # a file that fails part-way leaves nothing in the lake
            return name, f, None, str(e)

    # two files at a time: a small file alone does not keep both cores busy
    with ThreadPoolExecutor(max_workers=2) as pool:
        for i, (name, f, res, error) in enumerate(pool.map(one, jobs)):
            if progress:
                progress(f"ingest {name}", i + 1, total)
            if error is not None:
                _reject(rejected_dir, inputs, f, error, report)
                continue
            report.rows[name] = report.rows.get(name, 0) + res.rows
            manifest[f.relative_to(inputs).as_posix()] = _stamp(f)
            report.warnings += res.warnings()
            if res.quarantine.num_rows:
                quarantine.setdefault(name, []).append(res.quarantine)
                report.quarantined[name] = report.quarantined.get(name, 0) + res.quarantine.num_rows
    xml_tables = []
    for j, f in enumerate(xml):
        if progress:
            progress("ingest pm_xml", len(jobs) + j, total)
        try:
            xml_tables.append(read_pm_xml(f))
            manifest[f.relative_to(inputs).as_posix()] = _stamp(f)
        except PmFileRejected as e:
            _reject(rejected_dir, inputs, f, str(e), report)
    if xml_tables:
        t = pa.concat_tables(xml_tables, promote_options="default")
        (lake_new / "pm_xml").mkdir(parents=True, exist_ok=True)
        pq.write_table(t, lake_new / "pm_xml" / "part-00000.parquet")
        report.rows["pm_xml"] = t.num_rows

    if jobs or not new_only:  # nothing read: the quarantine stays as it was
        _write_quarantine(ws.root / "quarantine", quarantine,
                          {f.relative_to(inputs).as_posix() for _, f in jobs} if new_only else None)
    if new_only:
        report.days = _days({name: [_lake_path(lake_new, inputs, name, f) for n, f in jobs if n == name]
                             for name in {n for n, _ in jobs if TABLES[n].partition_by}})
        for f in sorted(p for p in lake_new.rglob("*") if p.is_file()):  # beside the files already there
            target = ws.lake / f.relative_to(lake_new)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(f, target)
        shutil.rmtree(lake_new, ignore_errors=True)
    else:
        _carry_streamed(ws.lake, lake_new)
        old = ws.root / ".lake.old"
        shutil.rmtree(old, ignore_errors=True)
        if ws.lake.exists():
            ws.lake.rename(old)
        lake_new.rename(ws.lake)
        shutil.rmtree(old, ignore_errors=True)
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    if not manifest_path.exists() or manifest_path.read_text() != text:
        atomic_write_text(manifest_path, text)
    report.warnings = collapse_warnings(report.warnings)
    if progress:
        progress("ingest", total, total)
    return report


def streamed_file_name(batch: int) -> str:
    """The lake file of one table-day of `opencem stream`'s micro-batch ``batch``; no input file becomes one."""
    return f"{STREAMED_PREFIX}{batch:09d}.parquet"


def _carry_streamed(lake: Path, lake_new: Path) -> None:
    """Hard-link the streamed records' files into the lake being rebuilt: they come from a stream source, not
    from the inputs folder a full ingest reads again, so rebuilding the lake must not lose them."""
    if not lake.is_dir():
        return
    for f in sorted(lake.rglob(f"{STREAMED_PREFIX}*.parquet")):
        target = lake_new / f.relative_to(lake)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(f, target)


def _write_quarantine(qdir: Path, new: dict[str, list[pa.Table]], redone: set[str] | None) -> None:
    """One file per table of the rows quarantined. With ``redone`` (the files read again), the rows of the
    other files already there are kept."""
    parts = {name: list(tables) for name, tables in new.items()}
    for old in sorted(qdir.glob("*.parquet")) if redone is not None else []:
        kept = pq.read_table(old)
        kept = kept.filter(pc.invert(pc.is_in(kept["source_file"], pa.array(sorted(redone), pa.string()))))
        parts.setdefault(old.stem, []).insert(0, kept)
    shutil.rmtree(qdir, ignore_errors=True)
    for name, tables in parts.items():
        if sum(t.num_rows for t in tables):
            qdir.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.concat_tables(tables), qdir / f"{name}.parquet")


def _lake_path(lake: Path, inputs: Path, name: str, f: Path) -> Path:
    """Where an input file goes in the lake: under its path in the inputs (a lone file in its table's folder)."""
    rel = f.relative_to(inputs).with_suffix(".parquet")
    return lake / rel if rel.parent != Path(".") else lake / name / "part-00000.parquet"


def _stamp(f: Path) -> list[int]:
    st = f.stat()
    return [st.st_size, st.st_mtime_ns]


def _days(files: dict[str, list[Path]]) -> list[dt.date]:
    """The days the rows of these lake files fall on, by each table's partition column."""
    days: set[dt.date] = set()
    with make_engine("duckdb") as eng:
        for name, paths in files.items():
            existing = [p for p in paths if p.exists()]  # a rejected file wrote nothing
            if existing:
                eng.register_parquet("new", existing, hive_partitioning=False)
                days |= set(eng.query_arrow(f"SELECT DISTINCT CAST({quote_ident(TABLES[name].partition_by)} AS DATE) AS d "
                                            "FROM new WHERE d IS NOT NULL")["d"].to_pylist())
    return sorted(days)


def _reject(rejected_dir: Path, inputs: Path, f: Path, reason: str, report: IngestReport) -> None:
    """Keep a rejected file under its path in the inputs (two days' part-00000 files do not collide)."""
    set_aside(f, rejected_dir / f.relative_to(inputs), reason)
    report.rejected.append(reason)


def set_aside(f: Path, aside: Path, reason: str) -> None:
    """Copy a rejected file to ``aside``, with its reason beside it in ``<name>.reason.txt``."""
    aside.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(f, aside)
    aside.with_name(f"{aside.name}.reason.txt").write_text(reason + "\n")
