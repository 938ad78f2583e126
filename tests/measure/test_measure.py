"""The measure stage end to end: DuckDB and Spark give the same tables; indicators check by hand."""

import shutil

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from opencem.cli import app
from opencem.engine import compare_tables
from opencem.indicators import qoe
from opencem.indicators.tree import load_tree
from opencem.ingest.pseudonym import KEY_ENV
from opencem.measure.calibrate import calibrate
from opencem.measure import run as measure_run
from opencem.measure.run import measure
from opencem.synth.generator import SynthConfig, generate
from opencem.workspace import MEASURE_TABLES

pytestmark = pytest.mark.slow  # every test measures or reads a generated operator

OUTPUTS = MEASURE_TABLES
KEYS = {"kpi_cell_15min": ["cell_id", "period_start"], "cei_subscriber_day": ["subscriber_id", "day"],
        "cei_journey_day": ["subscriber_id", "day"], "radio_subscriber_day": ["subscriber_id", "day"],
        "subscriber_position_day": ["subscriber_id", "day", "lat", "lon"],
        "subscriber_cell_day": ["subscriber_id", "day", "cell_id"],
        "poor_session_day": ["subscriber_id", "day", "cell_id", "start_time", "service"]}


@pytest.fixture(scope="module")
def small_op(tmp_path_factory):
    out = tmp_path_factory.mktemp("mop") / "op"
    generate(out, SynthConfig(subscribers=1500, days=4, seed=3, survey_rate=0.6))
    return out


@pytest.fixture(scope="module")
def duck_ws(small_op, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv(KEY_ENV, "measure-test-key")
    ws = tmp_path_factory.mktemp("ws") / "duck"
    measure(small_op, ws, "duckdb")
    yield ws
    mp.undo()


def read(ws, name):
    return pq.read_table(ws / "measure" / name)


def test_outputs_catalog_and_row_counts(duck_ws, small_op):
    con = duckdb.connect(str(duck_ws / "catalog.duckdb"), read_only=True)
    con.execute(f"SET file_search_path = '{duck_ws}'")  # views use paths relative to the workspace
    for name in OUTPUTS:
        assert con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] == read(duck_ws, name).num_rows > 0
    groups = duckdb.execute(f"""SELECT count(*) FROM (SELECT DISTINCT subscriber_id, service, CAST(start_time AS DATE)
        FROM '{small_op}/inputs/xdr/*/*.parquet')""").fetchall()[0][0]
    assert read(duck_ws, "kqi_pspu_day").num_rows == groups
    assert read(duck_ws, "kpi_cell_15min").num_rows == pq.read_table(small_op / "inputs" / "pm").num_rows
    # the per-subscriber daily summaries hold every session and report once
    xdr, radio = pq.read_table(small_op / "inputs" / "xdr"), pq.read_table(small_op / "inputs" / "radio_samples")
    assert pc.sum(read(duck_ws, "subscriber_cell_day")["sessions"]).as_py() == xdr.num_rows
    assert pc.sum(read(duck_ws, "radio_subscriber_day")["reports"]).as_py() == radio.num_rows
    assert pc.sum(read(duck_ws, "subscriber_position_day")["reports"]).as_py() == radio.num_rows - radio["lat"].null_count
    poor = pc.sum(read(duck_ws, "subscriber_cell_day")["poor_sessions"]).as_py()
    assert 0 < poor < xdr.num_rows
    # every poor session once, and with the subscriber's radio of its hour where they sent reports then
    sessions = read(duck_ws, "poor_session_day")
    assert sessions.num_rows == poor
    assert 0 < pc.sum(pc.is_valid(sessions["rsrp_reports"])).as_py() <= poor


def test_rerun_gives_the_same_output(duck_ws, small_op, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "measure-test-key")
    ws = tmp_path / "again"
    shutil.copytree(duck_ws, ws)
    measure(small_op, ws, "duckdb")
    for name in OUTPUTS:
        keys = KEYS.get(name, ["subscriber_id", "day", "service"])
        assert compare_tables(read(duck_ws, name), read(ws, name), keys) == [], name


def test_kpis_follow_their_counter_formulas(duck_ws, small_op):
    kpi = duckdb.execute(f"""SELECT k.rrc_setup_sr, p."RRC.ConnEstabSucc" / p."RRC.ConnEstabAtt",
            k.prb_util_dl, p."RRU.PrbUsedDl" / p."RRU.PrbAvailDl", k.ho_sr, p."MM.HoExeIntraSucc" / p."MM.HoExeIntraReq"
        FROM '{duck_ws}/measure/kpi_cell_15min/*/*.parquet' k
        JOIN '{small_op}/inputs/pm/*/*.parquet' p USING (cell_id, period_start)
        WHERE p."RRC.ConnEstabAtt" > 0 AND p."MM.HoExeIntraReq" > 0 LIMIT 500""").fetchall()
    a = np.array(kpi, dtype=float)
    assert len(a) == 500
    assert np.allclose(a[:, 0], a[:, 1]) and np.allclose(a[:, 2], a[:, 3]) and np.allclose(a[:, 4], a[:, 5])


def test_voice_kqi_is_the_e_model_of_each_call(duck_ws, small_op):
    lake = duck_ws / "lake"
    calls = duckdb.execute(f"""SELECT subscriber_id, CAST(start_time AS DATE), voice_delay_ms, packet_loss_pct, codec, jitter_ms
        FROM '{lake}/xdr/*/*.parquet' WHERE service = 'voice' AND success""").fetchall()
    sub, day = calls[0][0], calls[0][1]
    mine = [c for c in calls if c[0] == sub and c[1] == day]
    want = np.mean([qoe.emodel_mos(c[2], c[3], c[4], c[5]) for c in mine])
    got = duckdb.execute(f"""SELECT voice_mos_mean FROM '{duck_ws}/measure/kqi_pspu_day/*/*.parquet'
        WHERE subscriber_id = '{sub}' AND day = DATE '{day}' AND service = 'voice'""").fetchall()[0][0]
    assert got == pytest.approx(want, rel=1e-9)


def test_cei_is_worse_where_the_truth_says_experience_was_worse(duck_ws, small_op):
    # pseudonyms differ from the raw ids, so join through the same keyed hash
    from opencem.ingest.pseudonym import Pseudonymiser

    p = Pseudonymiser(b"measure-test-key")
    truth = pq.read_table(small_op / "truth" / "subscriber_daily")
    ids = [p.one(s) for s in truth["subscriber_id"].to_pylist()]
    t = truth.append_column("pid", pa.array(ids))  # noqa: F841  (read by the query below)
    (r,) = duckdb.execute(f"""SELECT corr(c.cei, -t.network_penalty) FROM t
        JOIN '{duck_ws}/measure/cei_subscriber_day/*/*.parquet' c ON c.subscriber_id = t.pid AND c.day = t.date""").fetchall()[0]
    assert r > 0.3


def test_calibration_reports_correlations_and_a_valid_tree(duck_ws):
    rep = calibrate(duck_ws, load_tree())
    assert rep.surveys_train > 40 and rep.surveys_test > 10
    assert -1 <= rep.respondent_r_default <= 1 and -1 <= rep.respondent_r_calibrated <= 1
    assert 0.0 <= rep.blend <= 1.0
    assert set(rep.tree.weights()["kqi"]) == set(load_tree().weights()["kqi"])


def test_cli_rejects_a_bad_tree_and_engine_in_one_line(small_op, tmp_path):
    bad = tmp_path / "tree.yaml"
    bad.write_text(load_tree().to_yaml().replace("curve: logistic", "curve: cubic", 1))
    runner = CliRunner()
    res = runner.invoke(app, ["measure", "--data", str(small_op), "--workspace", str(tmp_path / "ws"), "--tree", str(bad)])
    assert res.exit_code == 2 and "tree.yaml: services.web.kqis[0].curve" in " ".join(res.output.split())
    assert not (tmp_path / "ws" / "lake").exists()  # nothing done before the tree was checked
    res = runner.invoke(app, ["measure", "--data", str(small_op), "--workspace", str(tmp_path / "ws"), "--engine", "oracle"])
    assert res.exit_code == 2 and "unknown engine 'oracle'" in res.output


def _files(root):
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_a_new_day_is_measured_alone_and_gives_the_tables_of_a_full_run(duck_ws, small_op, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "measure-test-key")
    data, held = tmp_path / "data", tmp_path / "held"
    shutil.copytree(small_op / "inputs", data)
    last = sorted(p.name for p in (data / "xdr").iterdir())[-1]  # day=YYYY-MM-DD: the day that arrives later
    for table in ("xdr", "radio_samples", "pm"):
        shutil.move(data / table / last, held / table / last)
    ws = tmp_path / "ws"
    measure(data, ws, "duckdb")
    earlier = {p: t for p, t in _files(ws / "measure").items() if last not in str(p) and p.suffix == ".parquet"}
    for table in ("xdr", "radio_samples", "pm"):
        shutil.move(held / table / last, data / table / last)

    def crash(*args, **kwargs):
        raise RuntimeError("the machine went down")

    monkeypatch.setattr(measure_run, "run_pipeline", crash)  # the new day's run fails after its ingest
    with pytest.raises(RuntimeError):
        measure(data, ws, "duckdb", new_only=True)
    monkeypatch.undo()
    monkeypatch.setenv(KEY_ENV, "measure-test-key")
    res = measure(data, ws, "duckdb", new_only=True)  # its files are in the lake now; the day is still computed
    assert res.ingest.new_only and res.ingest.days == [] and res.ingest.skipped > 0
    assert [d.isoformat() for d in res.days] == [last.split("=")[1]]
    for name in OUTPUTS:  # the same tables as measuring every day at once
        keys = KEYS.get(name, ["subscriber_id", "day", "service"])
        diffs = compare_tables(read(duck_ws, name), read(ws, name), keys, rel=1e-9)
        assert diffs == [], (name, diffs[:5])
    assert all(p.stat().st_mtime_ns == t for p, t in earlier.items())  # the earlier days were not rewritten

    before = {**_files(ws / "measure"), **_files(ws / "lake")}
    res = measure(data, ws, "duckdb", new_only=True)  # nothing new: nothing read, nothing written
    assert res.rows == {} and res.days == [] and not res.ingest.rows
    assert {**_files(ws / "measure"), **_files(ws / "lake")} == before

    (ws / "measure" / measure_run.CODE).write_text('{"digest": "other SQL"}\n')  # days stored by other code
    res = measure(data, ws, "duckdb", new_only=True)  # nothing new, but every day is computed again
    assert res.days is None and res.rows["cei_subscriber_day"] > 0


@pytest.mark.spark
def test_spark_gives_the_same_tables_as_duckdb(duck_ws, small_op, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "measure-test-key")
    ws = tmp_path / "spark"
    measure(small_op, ws, "spark", spark_master="local[2]")
    for name in OUTPUTS:
        keys = KEYS.get(name, ["subscriber_id", "day", "service"])
        diffs = compare_tables(read(duck_ws, name), read(ws, name), keys, rel=1e-9)
        assert diffs == [], (name, diffs[:5])


@pytest.mark.spark
def test_a_spark_standalone_cluster_gives_the_same_tables_as_duckdb(spark_cluster, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "measure-test-key")
    op = tmp_path / "op"  # a small operator: the cluster's cost here is per step, not per row
    generate(op, SynthConfig(subscribers=300, days=3, seed=3, workers=1))
    measure(op, tmp_path / "duck", "duckdb")
    measure(op, tmp_path / "cluster", "spark", spark_master=spark_cluster)
    for name in OUTPUTS:
        keys = KEYS.get(name, ["subscriber_id", "day", "service"])
        diffs = compare_tables(read(tmp_path / "duck", name), read(tmp_path / "cluster", name), keys, rel=1e-9)
        assert diffs == [], (name, diffs[:5])
