"""Engine tests: the same SQL on DuckDB and Spark (local[2]) gives the same result.

Spark tests (marker `spark`) share one SparkSession per module and skip where pyspark or Java is missing
(.ci/run installs Java).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from opencem.engine import (
    DuckDBEngine,
    SparkEngine,
    Step,
    StepError,
    compare_tables,
    make_engine,
    normalise_arrow,
    run_pipeline,
    transpile,
    write_catalog,
)
from opencem.engine.duckdb_engine import MEMORY_LIMIT_ENV, MEMORY_SHARE, SPILL_DIR_ENV, THREADS_ENV
from opencem.engine.files import atomic_dir, hive_base_path
from opencem.errors import InputError


DAYS = [dt.date(2024, 3, 30), dt.date(2024, 3, 31), dt.date(2024, 4, 1)]
SPARK_TEST_CONF = {"spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"}


# --------------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------------

def make_events(n: int = 2000, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    base = np.datetime64("2024-03-30T00:00:00", "ms")
    ts = base + rng.integers(0, 3 * 86_400_000, n).astype("timedelta64[ms]")
    end = ts + rng.integers(0, 600_000, n).astype("timedelta64[ms]")
    x = rng.lognormal(1.0, 1.0, n)
    cells = np.array([f"C{i:03d}" for i in range(12)])
    return pa.table({
        "event_id": pa.array(np.arange(n), pa.int64()),
        "cell_id": pa.array(cells[rng.integers(0, 12, n)]),
        "subscriber_id": pa.array(rng.integers(0, 150, n).astype(np.int32)),
        "service": pa.array(np.array(["web", "video", "voice"])[rng.integers(0, 3, n)]),
        "ts": pa.array(ts, pa.timestamp("us")),
        "end_ts": pa.array(end, pa.timestamp("us")),
        "x": pa.array(x, mask=rng.random(n) < 0.05),
        "y": pa.array(rng.integers(-50, 1000, n).astype(np.int32)),
        "big": pa.array(rng.integers(0, 10**12, n), pa.int64()),
        "ok": pa.array(rng.random(n) < 0.9),
    })


def make_cells() -> pa.Table:
    # C011 has no row (LEFT JOIN gives NULLs); C099 has no events
    ids = [f"C{i:03d}" for i in range(11)] + ["C099"]
    return pa.table({
        "cell_id": ids,
        "site_id": [f"S{i // 3:02d}" for i in range(12)],
        "band": ["n78" if i % 3 == 0 else "b3" for i in range(12)],
        "capacity_mbps": pa.array([100.0 + 10 * i for i in range(12)], pa.float32()),
    })


@pytest.fixture(scope="module")
def events() -> pa.Table:
    return make_events()


@pytest.fixture(scope="module")
def lake(tmp_path_factory, events) -> Path:
    """events as a hive-partitioned Parquet lake: lake/events/day=YYYY-MM-DD/part-0.parquet (no day column)."""
    root = tmp_path_factory.mktemp("lake") / "events"
    days = pa.compute.cast(events.column("ts"), pa.date32())
    for d in DAYS:
        part = events.filter(pa.compute.equal(days, pa.scalar(d, pa.date32())))
        folder = root / f"day={d.isoformat()}"
        folder.mkdir(parents=True)
        pq.write_table(part, folder / "part-0.parquet")
    return root


def _register(engine, events, lake) -> None:
    engine.register_arrow("ev", events)
    engine.register_arrow("cells", make_cells())
    engine.register_parquet("lake_events", sorted(str(p) for p in lake.rglob("*.parquet")))
    engine.register_parquet("lake_glob", str(lake / "*" / "*.parquet"))


@pytest.fixture(scope="module")
def duck(events, lake):
    eng = DuckDBEngine()
    _register(eng, events, lake)
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def spark(events, lake):
    # small data: JIT compile time dominates, so C1 only (about half the Spark time of this module)
    eng = SparkEngine(master="local[2]", conf=SPARK_TEST_CONF)
    _register(eng, events, lake)
    yield eng
    eng.close()


@pytest.fixture(params=["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def engine(request):
    return request.getfixturevalue("duck" if request.param == "duckdb" else "spark")


# --------------------------------------------------------------------------------------------------
# parity: the portable SQL subset (docs/engine.md lists exactly these constructs)
# --------------------------------------------------------------------------------------------------

PORTABLE = {
    "group_by_filter": ("""
        SELECT cell_id, CAST(ts AS DATE) AS day,
          COUNT(*) AS n, COUNT(x) AS n_x, COUNT(*) FILTER (WHERE x > 3E0) AS n_hi,
          SUM(y) AS sum_y, SUM(big) AS sum_big, AVG(y) AS avg_y, AVG(x) AS avg_x,
          SUM(x) FILTER (WHERE ok) AS sum_x_ok, AVG(CASE WHEN ok THEN 1E0 ELSE 0E0 END) AS ok_rate,
          SUM(CASE WHEN service = 'video' THEN x END) AS video_x, count_if(NOT ok) AS fails,
          MIN(x) AS min_x, MAX(ts) AS last_ts, COUNT(DISTINCT subscriber_id) AS subs,
          STDDEV_SAMP(x) AS sd_x, VAR_SAMP(x) AS var_x, STDDEV_POP(x) AS sdp_x, CORR(x, y) AS r_xy,
          BOOL_OR(NOT ok) AS any_fail, BOOL_AND(ok) AS all_ok, max_by(service, ts) AS last_service,
          REGR_SLOPE(y, x) AS slope, COVAR_SAMP(x, y) AS cov_xy
        FROM ev GROUP BY cell_id, CAST(ts AS DATE)
        HAVING COUNT(*) > 5""", ["cell_id", "day"]),
    "group_by_all_empty": ("""
        SELECT service, COUNT(*) AS n, SUM(x) AS s, AVG(x) AS a, MAX(ts) AS m
        FROM ev WHERE y > 100000 GROUP BY ALL""", ["service"]),
    "math_case": ("""
        SELECT event_id,
          LN(x) AS ln_x, EXP(-x / 10E0) AS exp_x, POWER(x, 1.5E0) AS pow_x, SQRT(x) AS sqrt_x,
          LOG10(x) AS log10_x, LOG2(x) AS log2_x, ABS(y) AS abs_y, ROUND(x, 2) AS round_x,
          CAST(FLOOR(x) AS BIGINT) AS floor_x, CAST(ROUND(x) AS BIGINT) AS round_int,
          CASE WHEN x IS NULL THEN 'none' WHEN x < 1E0 THEN 'low' WHEN x < 5E0 THEN 'mid' ELSE 'high' END AS band,
          CASE WHEN x < 1E0 THEN 1E0 WHEN x > 5E0 THEN 5E0 ELSE x END AS clamped,
          CASE WHEN x > 0E0 THEN LN(x) END AS ln_guarded,
          COALESCE(x, 0E0) AS x0, NULLIF(y, 0) AS y_nz, y * 1E0 / NULLIF(y - 500, 0) AS ratio,
          y // 7 AS y_div, y % 7 AS y_mod, y / 7 AS y_frac, x * 0.5 AS x_half, y * 1.5 AS y_dec,
          GREATEST(y, 0) AS y_pos, LEAST(x, 10E0) AS x_cap, IF(ok, 1, 0) AS ok_int, ifnull(x, -1E0) AS x_or,
          x IS DISTINCT FROM 1E0 AS distinct_1, CAST(y AS DOUBLE) AS y_dbl, CAST(subscriber_id AS BIGINT) AS sub_big,
          substr(cell_id, 2, 2) AS cell_num, length(service) AS svc_len, concat(cell_id, '-', service) AS cell_svc,
          CAST('0x' || substr(md5(cell_id), 1, 15) AS BIGINT) AS hex_key,
          date_diff('day', DATE '1900-01-01', CAST(ts AS DATE)) % 7 AS weekday_mon0
        FROM ev""", ["event_id"]),
    "time": ("""
        SELECT event_id,
          date_trunc('hour', ts) AS hour, date_trunc('minute', ts) AS minute, date_trunc('day', ts) AS day_start,
          date_trunc('week', ts) AS week_start, date_trunc('month', ts) AS month_start,
          date_trunc('hour', ts) + (minute(ts) // 15) * INTERVAL 15 MINUTE AS q15,
          CAST(ts AS DATE) AS day, CAST(ts AS DATE) + 1 AS next_day,
          EXTRACT(hour FROM ts) AS hh, hour(ts) AS h, minute(ts) AS mi, month(ts) AS mo, year(ts) AS yr,
          dayofyear(ts) AS doy, isodow(ts) AS isodow, isodow(ts) >= 6 AS weekend,
          date_diff('millisecond', ts, end_ts) AS dur_ms,
          date_diff('millisecond', ts, end_ts) / 1E3 AS dur_s,
          date_diff('millisecond', TIMESTAMP '1970-01-01 00:00:00', ts) AS epoch_ms,
          date_diff('day', DATE '2024-03-01', CAST(ts AS DATE)) AS days_since,
          ts + INTERVAL 15 MINUTE AS plus15, ts - INTERVAL 1 HOUR AS minus1h,
          strftime(ts, '%Y-%m-%d %H:%M:%S') AS ts_text, CAST(ts AS VARCHAR) AS ts_cast
        FROM ev
        WHERE CAST(ts AS DATE) BETWEEN DATE '2024-03-30' AND DATE '2024-03-31'
          AND ts < TIMESTAMP '2024-03-31 18:00:00'""", ["event_id"]),
    "quantiles": ("""
        SELECT cell_id, quantile_cont(x, 0.9) AS p90, median(x) AS p50,
          percentile_cont(0.25) WITHIN GROUP (ORDER BY x) AS p25,
          percentile_cont(0.25) WITHIN GROUP (ORDER BY x DESC) AS p75
        FROM ev GROUP BY cell_id""", ["cell_id"]),
    "windows": ("""
        SELECT event_id, subscriber_id,
          ROW_NUMBER() OVER (PARTITION BY subscriber_id ORDER BY ts, event_id) AS rn,
          LAG(x) OVER (PARTITION BY subscriber_id ORDER BY ts, event_id) AS prev_x,
          LEAD(ts) OVER (PARTITION BY subscriber_id ORDER BY ts, event_id) AS next_ts,
          SUM(y) OVER (PARTITION BY subscriber_id ORDER BY ts, event_id
                       ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum_y,
          AVG(x) OVER (PARTITION BY subscriber_id ORDER BY ts, event_id
                       ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS x_ma3,
          AVG(x) OVER (PARTITION BY cell_id) AS cell_avg, COUNT(*) OVER (PARTITION BY cell_id) AS cell_n,
          RANK() OVER (PARTITION BY cell_id ORDER BY y DESC) AS y_rank,
          DENSE_RANK() OVER (PARTITION BY cell_id ORDER BY service) AS svc_rank,
          FIRST_VALUE(service) OVER (PARTITION BY subscriber_id ORDER BY ts, event_id) AS first_service,
          ROW_NUMBER() OVER (ORDER BY x DESC, event_id) AS x_order
        FROM ev""", ["event_id"]),
    "joins": ("""
        WITH per_cell AS (SELECT cell_id, COUNT(*) AS n, AVG(x) AS avg_x FROM ev GROUP BY cell_id)
        SELECT c.cell_id, c.site_id, c.band, p.n, p.avg_x, p.avg_x / c.capacity_mbps AS load
        FROM cells c LEFT JOIN per_cell p ON p.cell_id = c.cell_id""", ["cell_id"]),
    "semi_anti_join": ("""
        SELECT e.event_id, e.cell_id, c.band, c.site_id
        FROM ev e JOIN cells c USING (cell_id)
        WHERE e.subscriber_id IN (SELECT subscriber_id FROM ev WHERE service = 'voice' AND y > 900)
          AND NOT EXISTS (SELECT 1 FROM cells c2 WHERE c2.cell_id = e.cell_id AND c2.band = 'n78')""",
        ["event_id"]),
    "qualify_union_strings": ("""
        SELECT subscriber_id, cell_id AS label, 'top' AS kind FROM ev
        QUALIFY ROW_NUMBER() OVER (PARTITION BY subscriber_id ORDER BY y DESC, event_id) = 1
        UNION ALL
        SELECT DISTINCT subscriber_id, lower(cell_id) || '/' || upper(service) || '/' || CAST(subscriber_id AS VARCHAR)
          AS label, 'text' AS kind
        FROM ev WHERE service LIKE 'vi%' AND subscriber_id < 20 AND cell_id NOT LIKE '%1'""",
        ["kind", "subscriber_id", "label"]),
    "set_ops": ("""
        WITH web_only AS (
          SELECT subscriber_id FROM ev WHERE service = 'web'
          EXCEPT SELECT subscriber_id FROM ev WHERE service = 'voice' AND y > 500),
        both_svc AS (
          SELECT subscriber_id FROM ev WHERE service = 'web'
          INTERSECT SELECT subscriber_id FROM ev WHERE service = 'voice' AND y > 500)
        SELECT 'except' AS op, subscriber_id FROM web_only
        UNION ALL SELECT 'intersect' AS op, subscriber_id FROM both_svc""", ["op", "subscriber_id"]),
    "ordered_lists": ("""
        SELECT cell_id, list(subscriber_id ORDER BY y DESC, event_id) AS by_y,
          list(event_id ORDER BY event_id) FILTER (WHERE service = 'voice' AND y > 990) AS rare,
          list(DISTINCT service ORDER BY service) AS services,
          first(event_id ORDER BY y DESC, event_id) AS top_event
        FROM ev GROUP BY cell_id""", ["cell_id"]),
    "hive_lake": ("""
        SELECT l.day, l.service, COUNT(*) AS n, SUM(l.y) AS sum_y, MIN(l.ts) AS first_ts,
          COUNT(*) FILTER (WHERE l.day = CAST(l.ts AS DATE)) AS consistent
        FROM lake_events l WHERE l.day >= DATE '2024-03-31' GROUP BY l.day, l.service""", ["day", "service"]),
    "hive_glob": ("""
        SELECT * EXCLUDE (end_ts, big, ok), COUNT(*) OVER (PARTITION BY day) AS n_day
        FROM lake_glob WHERE event_id % 10 = 0""", ["event_id"]),
}


@pytest.mark.spark
@pytest.mark.parametrize("case", list(PORTABLE))
def test_parity(case, duck, spark):
    sql, keys = PORTABLE[case]
    a, b = duck.query_arrow(sql), spark.query_arrow(sql)
    assert a.num_rows > 0 or case.endswith("empty")
    assert compare_tables(a, b, keys) == []
    assert a.schema == b.schema  # already normalised by the engines


def test_hive_day_is_date(engine, events):
    t = engine.query_arrow("SELECT * FROM lake_events")
    assert t.schema.field("day").type == pa.date32()
    assert t.num_rows == events.num_rows
    assert engine.query_arrow("SELECT * FROM lake_glob").schema.field("day").type == pa.date32()


# --------------------------------------------------------------------------------------------------
# create_table, errors
# --------------------------------------------------------------------------------------------------

def test_create_table_replaces_and_failure_keeps_old(engine):
    engine.create_table("t_replace", "SELECT 1 AS v")
    engine.create_table("t_replace", "SELECT v + 1 AS v FROM (SELECT 1 AS v) s")
    assert engine.table_arrow("t_replace").to_pylist() == [{"v": 2}]
    with pytest.raises(StepError) as err:
        engine.create_table("t_replace", "SELECT no_such_column AS v FROM ev")
    msg = str(err.value)
    assert "t_replace" in msg and "no_such_column" in msg and engine.name in msg
    assert engine.table_arrow("t_replace").to_pylist() == [{"v": 2}]


def test_replace_rows_takes_out_the_keys_and_adds_the_rows_by_name():
    """The stream's held days: the touched pairs' rows replace theirs in place, columns matched by name."""
    with DuckDBEngine() as eng:
        eng.create_table("held", "SELECT * FROM (VALUES ('a', 1, 10.0), ('a', 2, 20.0), ('b', 1, 30.0)) t(sub, day, v)")
        eng.create_table("keys", "SELECT 'a' AS sub, 1 AS day UNION ALL SELECT 'c', 1")
        eng.replace_rows("held", "SELECT 99.0 AS v, 1 AS day, 'a' AS sub UNION ALL SELECT 5.0, 1, 'c'", "keys", ("sub", "day"))
        rows = sorted((r["sub"], r["day"], r["v"]) for r in eng.table_arrow("held").to_pylist())
        assert rows == [("a", 1, 99.0), ("a", 2, 20.0), ("b", 1, 30.0), ("c", 1, 5.0)]
        eng.replace_rows("held", "SELECT 'd' AS sub, 3 AS day, 1.0 AS v")  # no keys: rows added only
        assert eng.row_count("held") == 5
        with pytest.raises(StepError, match="held"):
            eng.replace_rows("held", "SELECT no_such_column FROM keys")


def test_create_table_over_registered_view(engine, events):
    engine.register_arrow("t_over", events.slice(0, 5))
    engine.create_table("t_over", "SELECT COUNT(*) AS n FROM ev")
    assert engine.table_arrow("t_over").to_pylist() == [{"n": events.num_rows}]
    assert engine.row_count("t_over") == 1


@pytest.mark.spark
def test_step_error_shows_translated_sql_on_spark(spark):
    sql = "SELECT cell_id, quantile_cont(nope, 0.5) AS q FROM ev GROUP BY cell_id"
    with pytest.raises(StepError) as err:
        spark.create_table("kqi_broken", sql)
    e = err.value
    assert e.step == "kqi_broken" and e.engine == "spark"
    assert "PERCENTILE(nope, 0.5)" in str(e)  # the Spark SQL that ran, not the DuckDB original
    assert "nope" in e.error
    assert isinstance(e, RuntimeError)


def test_step_error_on_untranslatable_sql():
    with pytest.raises(StepError) as err:
        SparkEngine()._sql("bad_step", "SELECT FROM WHERE (")  # never starts a session
    assert "bad_step" in str(err.value) and "SELECT FROM WHERE (" in str(err.value)


def test_transpile():
    sql = "SELECT COUNT(*) FILTER (WHERE x > 1) AS n, quantile_cont(x, 0.9) AS p FROM t"
    assert transpile(sql, "duckdb") == sql
    out = transpile(sql, "spark")
    assert "FILTER(WHERE x > 1)" in out and "PERCENTILE(x, 0.9)" in out
    desc = "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x DESC) AS p FROM t"
    assert "PERCENTILE(x, 1 - 0.5)" in transpile(desc, "spark")
    assert "(WEEKDAY(ts) + 1) >= 6" in transpile("SELECT isodow(ts) >= 6 AS weekend FROM t", "spark")
    assert "CAST(CONV(SUBSTRING(s, 1, 15), 16, 10) AS BIGINT)" in transpile("SELECT CAST('0x' || substr(s, 1, 15) AS BIGINT) FROM t", "spark")
    with pytest.raises(ValueError):
        transpile("SELECT 1; SELECT 2", "spark")
    with pytest.raises(ValueError):
        transpile("SELECT 1", "postgres")


# --------------------------------------------------------------------------------------------------
# normalisation and the parity harness
# --------------------------------------------------------------------------------------------------

def test_normalise_arrow():
    import decimal

    t = pa.table({
        "i32": pa.array([1], pa.int32()), "u8": pa.array([1], pa.uint8()),
        "hugeint_sum": pa.array([decimal.Decimal(45)], pa.decimal128(38, 0)),
        "dec": pa.array([decimal.Decimal("1.25")], pa.decimal128(10, 2)), "f32": pa.array([1.5], pa.float32()),
        "ts_tz": pa.array([dt.datetime(2024, 1, 1, 12)], pa.timestamp("us", tz="UTC")),
        "ts_ns": pa.array([dt.datetime(2024, 1, 1, 12)], pa.timestamp("ns")),
        "ls": pa.array(["a"], pa.large_string()), "dict": pa.array(["a"]).dictionary_encode(),
        "lst": pa.array([[1]], pa.list_(pa.int32())), "d": pa.array([dt.date(2024, 1, 1)], pa.date32()),
    })
    n = normalise_arrow(t)
    assert [f.type for f in n.schema] == [
        pa.int64(), pa.int64(), pa.int64(), pa.float64(), pa.float64(), pa.timestamp("us"), pa.timestamp("us"),
        pa.string(), pa.string(), pa.list_(pa.int64()), pa.date32()]
    assert n.column("ts_tz")[0].as_py() == dt.datetime(2024, 1, 1, 12)  # UTC wall clock
    assert n.column("dec")[0].as_py() == 1.25 and n.column("hugeint_sum")[0].as_py() == 45
    with pytest.raises(pa.ArrowInvalid):
        normalise_arrow(pa.table({"s": pa.array([decimal.Decimal(10) ** 30], pa.decimal128(38, 0))}))


def test_compare_tables():
    a = pa.table({"k": [1, 2, 3], "x": [1.0, None, float("nan")], "s": ["a", None, "c"]})
    b = pa.table({"k": pa.array([3, 1, 2], pa.int32()), "x": [float("nan"), 1.0 + 1e-12, None], "s": ["c", "a", None]})
    assert compare_tables(a, b, ["k"]) == []
    c = pa.table({"k": [3, 1, 2], "x": [float("nan"), 1.0 + 1e-6, None], "s": ["c", "a", "b"]})
    diffs = compare_tables(a, c, ["k"])
    assert len(diffs) == 2 and "'x'" in diffs[0] and "k=1" in diffs[0] and "'s'" in diffs[1]
    assert compare_tables(a, c, ["k"], rel=1e-5) == [diffs[1]]
    assert compare_tables(a, a.slice(1), ["k"]) == ["row count: 3 vs 2"]
    assert "columns differ" in compare_tables(a, a.rename_columns(["k", "y", "s"]), ["k"])[0]
    assert "type" in compare_tables(a, a.set_column(2, "s", pa.array([1, 2, 3])), ["k"])[0]


def test_hive_base_path():
    assert hive_base_path(["/l/pm/day=2024-01-01/a.parquet", "/l/pm/day=2024-01-02/b.parquet"]) == "/l/pm"
    assert hive_base_path(["/l/pm/*/*.parquet"]) == "/l/pm"
    assert hive_base_path(["/l/pm/a.parquet"]) is None
    assert hive_base_path(["/l/pm/day=1/a.parquet", "/l/xdr/day=1/a.parquet"]) is None


# --------------------------------------------------------------------------------------------------
# writing Parquet
# --------------------------------------------------------------------------------------------------

def test_atomic_dir_failure_keeps_old(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        tmp.mkdir()
        (tmp / "new.txt").write_text("new")
        raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (out / "old.txt").read_text() == "old"
    with atomic_dir(out) as tmp:
        tmp.mkdir()
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def _read(path: Path) -> pa.Table:
    with duckdb.connect() as con:  # not the module's shared connection, which another test may have left busy
        return normalise_arrow(con.sql(
            f"SELECT * FROM read_parquet('{path}/**/*.parquet', hive_partitioning = true)").to_arrow_table())


def test_write_parquet_partitioned_idempotent(engine, tmp_path):
    engine.create_table("w_day", "SELECT event_id, cell_id, CAST(ts AS DATE) AS day, x, y FROM ev")
    out = tmp_path / "w_day"
    engine.write_parquet("w_day", out, partition_by=["day"])
    first = _read(out)
    engine.write_parquet("w_day", out, partition_by=["day"])
    second = _read(out)
    assert sorted(p.name for p in out.iterdir()) == [f"day={d.isoformat()}" for d in DAYS]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w_day"]  # no temporary siblings left
    want = engine.table_arrow("w_day").select(first.column_names)
    assert compare_tables(first, want, ["event_id"]) == []
    assert compare_tables(second, want, ["event_id"]) == []  # replaced, not appended
    assert first.schema.field("day").type == pa.date32()
    # an empty table still writes a file with the schema
    engine.create_table("w_empty", "SELECT * FROM w_day WHERE y > 100000")
    engine.write_parquet("w_empty", tmp_path / "w_empty", partition_by=["day"])
    empty = _read(tmp_path / "w_empty")
    assert empty.num_rows == 0 and empty.column_names == ["event_id", "cell_id", "day", "x", "y"]


# --------------------------------------------------------------------------------------------------
# pipeline and catalog
# --------------------------------------------------------------------------------------------------

STEPS = [
    Step("kpi_cell_hour", """
        SELECT cell_id, date_trunc('hour', ts) AS hour, day, COUNT(*) AS sessions,
          COUNT(*) FILTER (WHERE NOT ok) AS failures, AVG(x) AS x_mean, SUM(y) AS y_sum
        FROM lake_events GROUP BY ALL""", partition_by=["day"]),
    Step("kqi_sub_day", """
        SELECT e.subscriber_id, e.day, c.band, SUM(e.y) AS y_sum, quantile_cont(e.x, 0.5) AS x_p50,
          AVG(e.x / c.capacity_mbps) AS load
        FROM lake_events e LEFT JOIN cells c USING (cell_id) GROUP BY e.subscriber_id, e.day, c.band""",
        partition_by=["day"]),
    Step("ranked", """
        SELECT subscriber_id, day, band, y_sum,
          ROW_NUMBER() OVER (PARTITION BY day ORDER BY y_sum DESC, subscriber_id, band) AS rn
        FROM kqi_sub_day""", publish=False),
    Step("top_day", "SELECT day, subscriber_id, band, y_sum FROM ranked WHERE rn <= 3"),
]
KEYS = {"kpi_cell_hour": ["cell_id", "hour"], "kqi_sub_day": ["subscriber_id", "day", "band"],
        "top_day": ["day", "subscriber_id", "band"]}


def _run(engine, ws: Path) -> dict[str, int]:
    calls = []
    rows = run_pipeline(engine, STEPS, ws / "measure", lambda s, d, t: calls.append((s, d, t)))
    assert calls[0] == ("kpi_cell_hour", 0, 4) and calls[-1] == ("top_day", 4, 4)
    write_catalog(ws / "measure", [s.name for s in STEPS], ws / "catalog.duckdb")
    return rows


def test_pipeline_duckdb_and_movable_catalog(duck, tmp_path, monkeypatch):
    ws = tmp_path / "ws"
    rows = _run(duck, ws)
    assert rows["top_day"] == 9 and rows["ranked"] == rows["kqi_sub_day"]
    assert not (ws / "measure" / "ranked").exists()  # publish=False
    moved = tmp_path / "moved" / "ws2"
    moved.parent.mkdir()
    ws.rename(moved)
    monkeypatch.chdir(moved)  # relative view paths resolve against the current folder
    con = duckdb.connect("catalog.duckdb", read_only=True)
    views = sorted(r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall())
    assert views == ["kpi_cell_hour", "kqi_sub_day", "top_day"]
    for name in views:
        got = normalise_arrow(con.sql(f"SELECT * FROM {name}").to_arrow_table())
        want = duck.table_arrow(name).select(got.column_names)
        assert compare_tables(got, want, KEYS[name]) == [], name
    assert con.execute("SELECT typeof(day) FROM kpi_cell_hour LIMIT 1").fetchone()[0] == "DATE"
    con.close()
    monkeypatch.chdir(tmp_path)  # from elsewhere: point file_search_path at the workspace
    con = duckdb.connect(str(moved / "catalog.duckdb"), read_only=True)
    con.execute(f"SET file_search_path = '{moved}'")
    assert con.execute("SELECT COUNT(*) FROM top_day").fetchone()[0] == 9
    con.close()


@pytest.mark.spark
def test_pipeline_spark_matches_duckdb(duck, spark, tmp_path):
    rd, rs = _run(duck, tmp_path / "d"), _run(spark, tmp_path / "s")
    assert rd == rs
    for name in ("kpi_cell_hour", "kqi_sub_day", "top_day"):
        a, b = _read(tmp_path / "d" / "measure" / name), _read(tmp_path / "s" / "measure" / name)
        assert compare_tables(a, b, KEYS[name]) == [], name
        # the files themselves have the same column types (both engines write normalised types)
        fa = pq.read_schema(next((tmp_path / "d" / "measure" / name).rglob("*.parquet")))
        fb = pq.read_schema(next((tmp_path / "s" / "measure" / name).rglob("*.parquet")))
        assert [(f.name, f.type) for f in fa] == [(f.name, f.type) for f in fb], name
    with duckdb.connect(str(tmp_path / "s" / "catalog.duckdb"), read_only=True) as con:
        con.execute(f"SET file_search_path = '{tmp_path / 's'}'")
        assert con.execute("SELECT COUNT(*) FROM top_day").fetchone()[0] == 9


def test_pipeline_failure_names_step(tmp_path, events, lake):
    with make_engine("duckdb") as eng:
        _register(eng, events, lake)
        steps = [STEPS[0], Step("cei_broken", "SELECT cell_id, sessions / nope AS r FROM kpi_cell_hour")]
        with pytest.raises(StepError) as err:
            run_pipeline(eng, steps, tmp_path / "out")
        assert err.value.step == "cei_broken" and "sessions / nope" in str(err.value)
        assert (tmp_path / "out" / "kpi_cell_hour").is_dir() and not (tmp_path / "out" / "cei_broken").exists()
        with pytest.raises(ValueError):
            run_pipeline(eng, [STEPS[0], STEPS[0]], None)


def test_spark_without_pyspark_is_one_line_saying_how_to_install(monkeypatch):
    import importlib.util

    from opencem.engine import make_engine
    from opencem.errors import InputError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyspark" else real(name, *a))
    with pytest.raises(InputError, match=r"pip install 'opencem\[spark\]'"):
        make_engine("spark")


def test_a_scratch_database_keeps_its_tables_on_disk_and_is_deleted_on_close(tmp_path):
    db = tmp_path / "spill" / "stage.duckdb"
    db.parent.mkdir()
    db.write_bytes(b"left by a killed session")
    with make_engine("duckdb", database=db, scratch=True) as eng:
        eng.create_table("t", "SELECT range AS i FROM range(100000)")
        eng.con.execute("CHECKPOINT")
        assert db.stat().st_size > 0 and eng.query_row("SELECT sum(i) FROM t")[0] == 100000 * 99999 // 2
    assert not db.exists() and not Path(str(db) + ".wal").exists()


def test_duckdb_resources_come_from_the_machine_unless_overridden(tmp_path, monkeypatch):
    for var in (MEMORY_LIMIT_ENV, THREADS_ENV, SPILL_DIR_ENV):
        monkeypatch.delenv(var, raising=False)
    with make_engine("duckdb", spill_dir=tmp_path / "spill") as eng:
        limit, threads, spill = eng.con.execute(
            "SELECT current_setting('memory_limit'), current_setting('threads'), current_setting('temp_directory')").fetchone()
        machine_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        assert limit.endswith("GiB") and abs(float(limit.split()[0]) - machine_gib * MEMORY_SHARE) < 0.2
        assert threads == os.cpu_count() and spill == str(tmp_path / "spill")
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1GB")
    monkeypatch.setenv(THREADS_ENV, "1")
    with make_engine("duckdb") as eng:
        assert eng.con.execute("SELECT current_setting('memory_limit'), current_setting('threads')").fetchone() == ("953.6 MiB", 1)
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "plenty")
    with pytest.raises(InputError, match="OPENCEM_MEMORY_LIMIT='plenty' is not a memory size"):
        make_engine("duckdb")
