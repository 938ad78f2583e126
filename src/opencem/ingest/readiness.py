"""`opencem doctor DATA`: is an operator's data ready for OpenCEM, and what will be missing?

Per input table: its files, valid and quarantined rows, the days it covers, the values outside OpenCEM's
defaults (open vocabularies), and the columns that are empty in every file. A required table that is
absent stops `opencem measure`; an optional one that is absent degrades a named part of the product, and
the report says which (:data:`WITHOUT`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow.compute as pc

from ..contracts import TABLES
from ..contracts.validate import ContractError, collapse_warnings, find_table_files, inputs_folder, validate_file
from ..workspace import OPTIONAL_LAKE

# the tables `opencem measure` cannot run on without a row; any other table may be empty in a small extract
NEEDS_ROWS = ("subscribers", "xdr")
# what an operator loses without an optional table
WITHOUT = {
    "portouts": "the base keeps every subscriber (nobody leaves it), and churn has no outcome to learn from",
    "tariffs": "the NPS model has no price features: a price change is not seen",
    "survey_invitations": "survey answers are not reweighted for who chose to answer (no response propensity)",
    "nps_tracker": "the NPS level is the survey respondents', who over-represent unhappy customers",
    "subscriber_contracts": "churn cannot see the contract type or when a minimum term ends",
}


@dataclass
class TableReadiness:
    table: str
    required: bool
    files: int = 0
    rows: int = 0
    quarantined: int = 0
    first_day: str | None = None
    last_day: str | None = None
    warnings: list[str] = field(default_factory=list)  # values outside the defaults, absent optional columns
    empty_columns: list[str] = field(default_factory=list)  # nullable columns with no value in any file
    rejected: list[str] = field(default_factory=list)  # files that cannot be read or lack a column

    @property
    def status(self) -> str:
        if self.files == 0:
            return "missing" if self.required else "absent"
        if self.rows == 0:  # every row bad or every file rejected; or an extract with no row at all
            return "unusable" if self.quarantined or self.rejected else "empty"
        return "partly rejected" if self.rejected else "ready"

    @property
    def effect(self) -> str | None:
        """What is lost because of this table, or None."""
        if self.files == 0:
            return "`opencem measure` stops without it" if self.required else WITHOUT[self.table]
        from ..nps.train import MIN_ANSWERS, MIN_HISTORY_DAYS  # here: it loads LightGBM

        if self.table == "surveys" and self.rows < MIN_ANSWERS:
            return f"{self.rows:,} answers: `opencem train nps` needs at least {MIN_ANSWERS:,} (from day {MIN_HISTORY_DAYS + 1} of the data on)"
        if self.empty_columns:
            from ..contracts.lineage import reach

            lost = reach(self.table, self.empty_columns)
            return ("every KPI, KQI and feature computed from " + ", ".join(self.empty_columns) + " is unavailable (NULL)"
                    + (": " + "; ".join(lost) if lost else ""))
        return None


def check_readiness(data: Path, progress: Callable[[str, int, int], None] | None = None) -> list[TableReadiness]:
    """The readiness of every input table under ``data`` (or ``data/inputs``)."""
    inputs = inputs_folder(data)
    jobs = {name: find_table_files(inputs, name) for name in TABLES}
    total, done = sum(len(f) for f in jobs.values()), 0
    out = []
    for name, files in jobs.items():
        contract = TABLES[name]
        r = TableReadiness(name, required=name not in OPTIONAL_LAKE, files=len(files))
        filled: set[str] = set()
        days: list = []
        for f in files:
            done += 1
            if progress:
                progress(f"doctor {name}", done, total)
            try:
                res = validate_file(f, name, f.relative_to(inputs).as_posix())
            except ContractError as e:
                r.rejected.append(str(e))
                continue
            r.rows += res.valid.num_rows
            r.quarantined += res.quarantine.num_rows
            r.warnings += res.warnings()
            filled |= {c.name for c in contract.columns if res.valid[c.name].null_count < res.valid.num_rows}
            if contract.partition_by and res.valid.num_rows:
                mm = pc.min_max(res.valid[contract.partition_by])
                days += [mm["min"].as_py(), mm["max"].as_py()]
        r.warnings = collapse_warnings(r.warnings)
        if r.rows:
            r.empty_columns = [c.name for c in contract.columns if c.nullable and c.name not in filled]
        if days:
            r.first_day, r.last_day = str(min(days).date()), str(max(days).date())
        out.append(r)
    return out


def as_dict(report: list[TableReadiness]) -> dict:
    return {"tables": [{**asdict(r), "status": r.status, "effect": r.effect} for r in report],
            "ready_for_measure": all(r.status in ("ready", "partly rejected") or (r.status == "empty" and r.table not in NEEDS_ROWS)
                                     for r in report if r.required)}
