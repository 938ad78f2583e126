"""What a synthetic operator contains: rows per table and the headline facts of its ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from ..contracts import TABLES
from ..contracts.validate import find_table_files


def table_counts(inputs: Path) -> list[tuple[str, int, int, float]]:
    """(table, rows, files, MiB) for every contract table found under `inputs`."""
    con = duckdb.connect()
    rows = []
    for name in TABLES:
        files = find_table_files(inputs, name)
        if not files:
            continue
        reader = "read_parquet" if files[0].suffix == ".parquet" else "read_csv"
        n = con.execute(f"SELECT count(*) FROM {reader}({[str(f) for f in files]!r})").fetchone()[0]
        rows.append((name, n, len(files), sum(f.stat().st_size for f in files) / 2**20))
    return rows


def truth_facts(truth: Path) -> dict:
    con = duckdb.connect()
    nps = con.execute(f"SELECT min(date), max(date), first(nps_census ORDER BY date), last(nps_census ORDER BY date) "
                  f"FROM '{truth / 'nps_daily.parquet'}'").fetchone()
    causes = con.execute(f"SELECT cause, count(*) FROM '{truth / 'faults.parquet'}' GROUP BY 1 ORDER BY 1").fetchall()
    churn = con.execute(f"SELECT cause, count(*) FILTER (in_window), count(*) FROM '{truth / 'churners.parquet'}' "
                    "GROUP BY 1 ORDER BY 3 DESC").fetchall()
    fixes = []
    if (truth / "fixes.parquet").exists():
        fixes = con.execute(f"SELECT fix_id, action, target, fix_date, subscribers_affected, "
                        f"mean_throughput_kbps_with, mean_throughput_kbps_without, nps_with, nps_without "
                        f"FROM '{truth / 'fixes.parquet'}' ORDER BY 1").fetchall()
    manifest = json.loads((truth / "manifest.json").read_text())
    return {"nps": nps, "fault_causes": causes, "churn": churn, "fixes": fixes, "manifest": manifest}
