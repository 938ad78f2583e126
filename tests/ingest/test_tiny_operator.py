"""An operator's first trial extract is small, and some of its tables are empty: every stage that can run on it
runs, and the one that cannot (the NPS model) says why in one line."""

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from opencem.cli import app

pytestmark = pytest.mark.slow


def _run(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def test_a_tiny_operator_with_empty_tables_runs_end_to_end(tmp_path, wide_console):
    data, ws = tmp_path / "tiny", tmp_path / "ws"
    r = _run("synth", "--out", str(data), "--subscribers", "300", "--days", "3", "--seed", "5", "--workers", "1")
    assert r.exit_code == 0, r.output
    for name in ("care_contacts", "portouts", "surveys"):  # tables with a header and no row
        path = data / "inputs" / f"{name}.parquet"
        pq.write_table(pq.read_table(path).slice(0, 0), path)
    (data / "inputs" / "tariffs.parquet").unlink()

    r = _run("doctor", str(data))
    assert r.exit_code == 0, r.output
    assert "care_contacts" in r.output and "empty" in r.output and "ready for `opencem measure`" in r.output
    assert "tariffs: the NPS model has no price features" in r.output

    assert _run("measure", "--data", str(data), "--workspace", str(ws)).exit_code == 0
    r = _run("diagnose", "--workspace", str(ws))
    assert r.exit_code == 0, r.output

    r = _run("train", "nps", "--workspace", str(ws))
    assert r.exit_code == 2
    [line] = [x for x in r.output.splitlines() if x.startswith("error:")]
    assert "needs at least 300" in line and "Traceback" not in r.output
    r = _run("score", "--workspace", str(ws))
    assert r.exit_code == 2 and "run `opencem train nps` first" in r.output


def test_doctor_stops_an_extract_without_a_session(tmp_path):
    data = tmp_path / "tiny"
    assert _run("synth", "--out", str(data), "--subscribers", "300", "--days", "3", "--workers", "1").exit_code == 0
    for part in (data / "inputs" / "xdr").rglob("*.parquet"):
        pq.write_table(pq.read_table(part).slice(0, 0), part)
    r = _run("doctor", str(data))
    assert r.exit_code == 1 and "not ready for `opencem measure`" in r.output
