"""Another operator's export, imported: does it give the canonical profile's outputs, and what does the twin
make of sites that went off air with no PM rows at all?

    python benchmarks/import_eval.py --out DIR --subscribers 10000 --days 14 --seed 17

Generates the canonical synthetic operator, exports it as the foreign operator (`opencem synth --profile
foreign` does the same in one step), imports the export with its shipped mapping, measures and diagnoses
both, and compares: the KQI / CEI tables, the PM periods without a row, and the twin's accuracy per fault
(benchmarks/twin_eval.py's matching) on each. Prints and appends one JSON line to
benchmarks/results/import_eval.jsonl.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from opencem.engine.pipeline import sql_file
from opencem.ingest.importer import import_tables
from opencem.measure.run import measure
from opencem.synth.foreign import export_foreign
from opencem.synth.generator import SynthConfig, generate
from opencem.twin.accuracy import _overlaps, evaluate, load_faults
from opencem.twin.run import diagnose
from opencem.workspace import Workspace

KEYS = {"kqi_pspu_day": ["subscriber_id", "service", "day"], "cei_service_day": ["subscriber_id", "service", "day"],
        "cei_subscriber_day": ["subscriber_id", "day"], "cei_journey_day": ["subscriber_id", "journey", "day"]}


def _table(ws: Workspace, name: str) -> pa.Table:
    t = pa.concat_tables([pq.read_table(f) for f in ws.measure_files(name)])
    return t.sort_by([(k, "ascending") for k in KEYS[name] if k in t.column_names])


def _max_diff(a: pa.Table, b: pa.Table) -> float | str:
    if a.num_rows != b.num_rows:
        return f"rows {a.num_rows} != {b.num_rows}"
    worst = 0.0
    for c in a.column_names:
        if pa.types.is_floating(a[c].type):
            worst = max(worst, pc.max(pc.abs(pc.subtract(a[c], b[c]))).as_py() or 0.0)
        elif not a[c].equals(b[c]):
            return f"{c} differs"
    return worst


def _twin(ws: Path, truth: Path) -> dict:
    diagnose(ws)
    w = Workspace(ws)
    with w.session(tables=("xdr", "cells")) as engine:
        first, last = engine.query_row(sql_file("opencem.twin", "xdr_days"))
        faults = load_faults(truth, engine.table_arrow("cells"))
    episodes = pq.read_table(w.twin / "episodes.parquet")
    res = evaluate(episodes, faults, first, last + dt.timedelta(days=1))
    coverage = [f for f in faults if f["cause"] == "coverage"]
    named = {e["cause"] for e in episodes.to_pylist() for f in coverage if _overlaps(e, f)}
    res["coverage_faults"] = len(coverage)
    res["coverage_episode_causes"] = sorted(named)
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--subscribers", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--seed", type=int, default=17)
    a = ap.parse_args()
    shutil.rmtree(a.out, ignore_errors=True)
    canonical, foreign, data = a.out / "canonical", a.out / "foreign", a.out / "imported"
    generate(canonical, SynthConfig(subscribers=a.subscribers, days=a.days, seed=a.seed, workers=2))
    t0 = time.perf_counter()
    export_foreign(canonical, foreign)
    t_export = time.perf_counter() - t0
    t0 = time.perf_counter()
    results = import_tables(foreign / "inputs", foreign / "mapping.yaml", data)
    t_import = time.perf_counter() - t0
    ws_c, ws_f = a.out / "ws_canonical", a.out / "ws_imported"
    measure(canonical, ws_c)
    Workspace(ws_f).pseudonym_key.parent.mkdir(parents=True)
    shutil.copyfile(Workspace(ws_c).pseudonym_key, Workspace(ws_f).pseudonym_key)  # the same pseudonyms
    measure(data, ws_f)
    diffs = {name: _max_diff(_table(Workspace(ws_c), name), _table(Workspace(ws_f), name)) for name in KEYS}
    with Workspace(ws_f).session(tables=("kpi_cell_15min",)) as engine:
        unreported = engine.query_row("SELECT count(*) FILTER (WHERE NOT pm_reported), "
                                      "count(DISTINCT cell_id) FILTER (WHERE NOT pm_reported) FROM kpi_cell_15min")
    res = {
        "when": dt.datetime.now().isoformat(timespec="seconds"), "subscribers": a.subscribers, "days": a.days,
        "seed": a.seed, "export_s": round(t_export, 1), "import_s": round(t_import, 1),
        "imported_rows": sum(r.rows for r in results), "quarantined": sum(r.quarantined for r in results),
        "rejected_files": sum(len(r.rejected) for r in results), "max_abs_diff": diffs,
        "pm_periods_without_row": unreported[0], "cells_without_pm_rows": unreported[1],
        "twin_canonical": _twin(ws_c, canonical / "truth"), "twin_imported": _twin(ws_f, foreign / "truth"),
    }
    print(json.dumps(res, indent=1, default=str))
    out = Path(__file__).parent / "results" / "import_eval.jsonl"
    with out.open("a") as fh:
        fh.write(json.dumps(res, default=str) + "\n")


if __name__ == "__main__":
    main()
