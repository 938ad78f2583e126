"""What a synthetic operator contains: rows per table and the headline facts of its ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from ..contracts import TABLES
from ..contracts.validate import find_table_files
from ..engine import make_engine, sql_file

_SQL = "opencem.synth"  # synth/sql/truth_*.sql


def _rows(t: pa.Table) -> list[tuple]:
    """A query result as a list of row tuples."""
    return list(zip(*(c.to_pylist() for c in t.columns)))


def table_counts(inputs: Path) -> list[tuple[str, int, int, float]]:
    """(table, rows, files, MiB) for every contract table found under `inputs`."""
    rows = []
    with make_engine("duckdb") as eng:
        for name in TABLES:
            files = find_table_files(inputs, name)
            if not files:
                continue
            paths = [str(f) for f in files]
            if files[0].suffix == ".parquet":
                eng.register_parquet(name, paths, hive_partitioning=False)
            else:
                eng.register_csv(name, paths)
            rows.append((name, eng.row_count(name), len(files), sum(f.stat().st_size for f in files) / 2**20))
    return rows


def truth_facts(truth: Path) -> dict:
    has_fixes = (truth / "fixes.parquet").exists()  # a run without fixes has no fixes file
    with make_engine("duckdb") as eng:
        for name in ("nps_daily", "faults", "churners") + (("fixes",) if has_fixes else ()):
            eng.register_parquet(name, str(truth / f"{name}.parquet"), hive_partitioning=False)
        nps = eng.query_row(sql_file(_SQL, "truth_nps"), step="truth_nps")
        causes = _rows(eng.query_arrow(sql_file(_SQL, "truth_fault_causes"), step="truth_fault_causes"))
        churn = _rows(eng.query_arrow(sql_file(_SQL, "truth_churn"), step="truth_churn"))
        fixes = _rows(eng.query_arrow(sql_file(_SQL, "truth_fixes"), step="truth_fixes")) if has_fixes else []
    manifest = json.loads((truth / "manifest.json").read_text())
    return {"nps": nps, "fault_causes": causes, "churn": churn, "fixes": fixes, "manifest": manifest}
