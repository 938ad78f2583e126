"""GROUP BY timing on DuckDB and Spark (local mode) over the same Parquet lake, plus Spark session start.

    python benchmarks/engine_groupby.py --rows 2000000 --days 14 --repeat 3 [--master local[2]] [--jsonl FILE]

Generates a synthetic session table (hive folders day=YYYY-MM-DD), registers it on both engines, runs two
queries of the portable subset (plain aggregates; aggregates with an exact 90th percentile) --repeat times
and prints first and best wall-clock times. Results on both engines are checked with compare_tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from opencem.engine import DuckDBEngine, SparkEngine, compare_tables

QUERIES = {
    "aggregates": """
        SELECT cell_id, day, COUNT(*) AS sessions, COUNT(*) FILTER (WHERE NOT ok) AS failures,
          AVG(throughput_kbps) AS thp_mean, SUM(volume_bytes) AS volume,
          AVG(CASE WHEN rtt_ms > 100E0 THEN 1E0 ELSE 0E0 END) AS slow_share,
          COUNT(DISTINCT subscriber_id) AS subscribers
        FROM sessions GROUP BY cell_id, day""",
    "aggregates_p90": """
        SELECT cell_id, day, COUNT(*) AS sessions, AVG(throughput_kbps) AS thp_mean,
          quantile_cont(throughput_kbps, 0.9) AS thp_p90
        FROM sessions GROUP BY cell_id, day""",
}


def make_lake(root: Path, rows: int, days: int, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    per_day = rows // days
    cells = np.array([f"C{i:04d}" for i in range(1000)])
    start = np.datetime64("2026-10-05T00:00:00", "ms")
    for d in range(days):
        day = (start + np.timedelta64(d, "D")).astype("datetime64[D]")
        n = per_day if d < days - 1 else rows - per_day * (days - 1)
        t = pa.table({
            "subscriber_id": rng.integers(0, 100_000, n),
            "cell_id": cells[rng.integers(0, len(cells), n)],
            "start_time": pa.array(
                start + np.timedelta64(d, "D") + rng.integers(0, 86_400_000, n).astype("timedelta64[ms]"),
                pa.timestamp("us")),
            "throughput_kbps": rng.lognormal(9.5, 1.0, n),
            "rtt_ms": rng.gamma(2.0, 25.0, n),
            "volume_bytes": rng.integers(1_000, 50_000_000, n),
            "ok": rng.random(n) < 0.97,
        })
        folder = root / f"day={day}"
        folder.mkdir(parents=True)
        pq.write_table(t, folder / "part-0.parquet")


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--jsonl", type=Path, default=None, help="append a JSON line with the results")
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="opencem-engine-bench-"))
    try:
        gen_s, _ = timed(lambda: make_lake(root / "sessions", a.rows, a.days))
        files = sorted(str(p) for p in (root / "sessions").rglob("*.parquet"))
        result = {"rows": a.rows, "days": a.days, "cpus": os.cpu_count(), "python": platform.python_version(),
                  "load_avg_1m_at_start": round(os.getloadavg()[0], 2), "generate_s": round(gen_s, 2),
                  "master": a.master, "queries": {}}
        duck = DuckDBEngine()
        spark = SparkEngine(master=a.master)
        result["spark_session_start_s"] = round(timed(lambda: spark.spark)[0], 2)
        result["spark_register_s"] = round(timed(lambda: spark.register_parquet("sessions", files))[0], 2)
        result["duckdb_register_s"] = round(timed(lambda: duck.register_parquet("sessions", files))[0], 3)
        for name, sql in QUERIES.items():
            row = {}
            outs = {}
            for eng in (duck, spark):
                times = []
                for _ in range(a.repeat):
                    s, out = timed(lambda eng=eng, sql=sql: eng.query_arrow(sql))
                    times.append(s)
                outs[eng.name] = out
                row[eng.name] = {"first_s": round(times[0], 3), "best_s": round(min(times), 3), "groups": out.num_rows}
            diffs = compare_tables(outs["duckdb"], outs["spark"], ["cell_id", "day"])
            row["same_result"] = not diffs
            result["queries"][name] = row
        result["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
        spark.close()
        duck.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{a.rows:,} rows, {a.days} days, {result['cpus']} CPUs, Spark master {a.master}; "
          f"load average {result['load_avg_1m_at_start']} -> {result['load_avg_1m_at_end']}")
    print(f"Spark session start {result['spark_session_start_s']} s; register Parquet: Spark "
          f"{result['spark_register_s']} s, DuckDB {result['duckdb_register_s']} s")
    print("| query | DuckDB first / best (s) | Spark first / best (s) | groups | same result |")
    print("|---|---|---|---|---|")
    for name, row in result["queries"].items():
        d, s = row["duckdb"], row["spark"]
        print(f"| {name} | {d['first_s']} / {d['best_s']} | {s['first_s']} / {s['best_s']} "
              f"| {d['groups']:,} | {row['same_result']} |")
    if a.jsonl:
        with open(a.jsonl, "a") as f:
            f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
