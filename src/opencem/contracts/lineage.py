"""What an input column reaches: the KPIs computed from a PM counter and the named SQL steps that read them.

Read from the SQL templates themselves (sqlglot for the KPI expressions, identifiers for the readers), so
the answer cannot drift from what runs. `opencem doctor` uses it to say what a missing counter takes away.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

import sqlglot
import sqlglot.expressions as exp

from . import TABLES, get
from ..engine import sql_file

# the packages whose sql/ folders hold the named steps after ingest
_STEP_PACKAGES = ("opencem.measure", "opencem.nps", "opencem.twin", "opencem.loop")
_KPI_STEP = "kpi_cell_15min"
_COMMENT = re.compile(r"--[^\n]*")


@lru_cache(maxsize=1)
def kpi_counters() -> dict[str, frozenset[str]]:
    """KPI column of kpi_cell_15min -> the PM counters its expression reads."""
    tree = sqlglot.parse_one(sql_file("opencem.measure", _KPI_STEP), read="duckdb")
    pm = set(get("pm").column_names)
    out = {}
    for proj in tree.selects:
        used = frozenset(c.name for c in proj.find_all(exp.Column)) & pm
        if used - {"cell_id", "period_start", "granularity_s"}:
            out[proj.alias_or_name] = used
    return out


@lru_cache(maxsize=1)
def _steps() -> dict[str, str]:
    """'package/step' -> its SQL without comments."""
    out = {}
    for package in _STEP_PACKAGES:
        for f in sorted(resources.files(package).joinpath("sql").iterdir(), key=lambda p: p.name):
            if f.name.endswith(".sql"):
                out[f"{package.removeprefix('opencem.')}/{f.name[:-4]}"] = _COMMENT.sub("", f.read_text())
    return out


def readers(column: str) -> list[str]:
    """The named steps whose SQL reads ``column`` (as an identifier, quoted or not)."""
    pattern = re.compile(rf'(?<![\w.]){re.escape(column)}(?![\w])|"{re.escape(column)}"')
    return [name for name, sql in _steps().items() if name != f"measure/{_KPI_STEP}" and pattern.search(sql)]


def _unique(column: str) -> bool:
    return sum(column in t.column_names for t in TABLES.values()) == 1


def reach(table: str, columns: list[str]) -> list[str]:
    """One phrase per output that the given empty / absent columns of ``table`` make unavailable."""
    out = []
    if table == "pm":
        lost = {kpi: sorted(used & set(columns)) for kpi, used in kpi_counters().items() if used & set(columns)}
        for kpi, counters in lost.items():
            steps = readers(kpi)
            out.append(f"KPI {kpi} (from {', '.join(counters)})" + (f", read by {', '.join(steps)}" if steps else ""))
        return out
    for c in columns:
        steps = readers(c) if _unique(c) else []
        if steps:
            out.append(f"{table}.{c}, read by {', '.join(steps)}")
    return out
