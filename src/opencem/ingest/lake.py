"""Ingest: input files -> validated, pseudonymised Parquet lake, with quarantine and rejects.

Every input file is validated against its contract. Bad rows go to `WS/quarantine/<table>.parquet`
with file, row, column, value and reason; a file that cannot be read or lacks a column is copied to
`WS/rejected/` under its path in the inputs, with a `.reason.txt`. The new lake is written beside the old one and swapped in
at the end, so a failed ingest leaves the previous lake untouched.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..contracts import TABLES
from ..contracts.validate import ContractError, collapse_warnings, find_table_files, inputs_folder, validate_file
from ..workspace import Workspace
from .pm_xml import PmFileRejected, read_pm_xml
from .pseudonym import Pseudonymiser

PM_XML_FOLDER = "pm_xml"


@dataclass
class IngestReport:
    rows: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # per file: values outside OpenCEM's defaults, absent optional columns


def ingest(inputs: Path, workspace: Path, key: bytes, progress: Callable[[str, int, int], None] | None = None) -> IngestReport:
    inputs, ws = inputs_folder(inputs), Workspace(workspace)
    jobs = [(name, f) for name in TABLES for f in find_table_files(inputs, name)]
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
    pseudo = Pseudonymiser(key)
    report = IngestReport()
    quarantine: dict[str, list[pa.Table]] = {}
    total = len(jobs) + len(xml)

    def one(job: tuple[str, Path]):
        """Validate, pseudonymise and write one file; returns (rows, validation result) or the rejection."""
        name, f = job
        try:
            res = validate_file(f, name, f.relative_to(inputs).as_posix())
        except ContractError as e:
            return name, f, None, None, str(e)
        table = res.valid
        if "subscriber_id" in table.column_names:
            table = table.set_column(table.schema.get_field_index("subscriber_id"), "subscriber_id",
                                     pseudo.column(table["subscriber_id"]))
        rel = f.relative_to(inputs).with_suffix(".parquet")
        out = lake_new / rel if rel.parent != Path(".") else lake_new / name / "part-00000.parquet"
        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, out, compression="zstd", compression_level=1)
        return name, f, table.num_rows, res, None

    # files are independent: two at a time keeps both cores busy between DuckDB's and Arrow's own threads
    with ThreadPoolExecutor(max_workers=2) as pool:
        for i, (name, f, rows, res, error) in enumerate(pool.map(one, jobs)):
            if progress:
                progress(f"ingest {name}", i + 1, total)
            if error is not None:
                _reject(rejected_dir, inputs, f, error, report)
                continue
            report.rows[name] = report.rows.get(name, 0) + rows
            report.warnings += res.warnings()
            q = res.quarantine
            if q.num_rows:
                quarantine.setdefault(name, []).append(q)
                report.quarantined[name] = report.quarantined.get(name, 0) + q.num_rows
    xml_tables = []
    for j, f in enumerate(xml):
        if progress:
            progress("ingest pm_xml", len(jobs) + j, total)
        try:
            xml_tables.append(read_pm_xml(f))
        except PmFileRejected as e:
            _reject(rejected_dir, inputs, f, str(e), report)
    if xml_tables:
        t = pa.concat_tables(xml_tables, promote_options="default")
        (lake_new / "pm_xml").mkdir(parents=True, exist_ok=True)
        pq.write_table(t, lake_new / "pm_xml" / "part-00000.parquet")
        report.rows["pm_xml"] = t.num_rows

    qdir = ws.root / "quarantine"
    shutil.rmtree(qdir, ignore_errors=True)
    if quarantine:
        qdir.mkdir(parents=True)
        for name, parts in quarantine.items():
            pq.write_table(pa.concat_tables(parts), qdir / f"{name}.parquet")
    old = ws.root / ".lake.old"
    shutil.rmtree(old, ignore_errors=True)
    if ws.lake.exists():
        ws.lake.rename(old)
    lake_new.rename(ws.lake)
    shutil.rmtree(old, ignore_errors=True)
    report.warnings = collapse_warnings(report.warnings)
    if progress:
        progress("ingest", total, total)
    return report


def _reject(rejected_dir: Path, inputs: Path, f: Path, reason: str, report: IngestReport) -> None:
    """Keep a rejected file under its path in the inputs (two days' part-00000 files do not collide)."""
    set_aside(f, rejected_dir / f.relative_to(inputs), reason)
    report.rejected.append(reason)


def set_aside(f: Path, aside: Path, reason: str) -> None:
    """Copy a rejected file to ``aside``, with its reason beside it in ``<name>.reason.txt``."""
    aside.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(f, aside)
    aside.with_name(f"{aside.name}.reason.txt").write_text(reason + "\n")
