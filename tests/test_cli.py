"""The command line's error handling: Typer parses days, an error the user caused is one line, a bug keeps
its traceback. No operator needed: the commands fail (or are stopped) before touching any data."""

import datetime as dt

import pytest
from typer.testing import CliRunner

import opencem.nps.score
from opencem.cli import app
from opencem.contracts.validate import ContractError


def run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def text(res) -> str:
    return " ".join(res.output.split())  # Rich wraps long lines at the console width


@pytest.mark.parametrize("args, option", [
    (["score", "--as-of", "2026-13-01"], "--as-of"),
    (["train", "nps", "--until", "yesterday"], "--until"),
    (["diagnose", "--start", "2026-10-5x"], "--start"),
    (["whatif", "--action", "fix_core", "--cells", "c1", "--start", "2026-10-05", "--end", "2026-02-30"], "--end"),
    (["prioritise", "--as-of", "05/10/2026"], "--as-of"),
    (["verify", "--cells", "c1", "--fix-date", "2026-10"], "--fix-date"),
    (["synth", "--start", "tomorrow"], "--start"),
])
def test_a_bad_day_is_a_usage_error_naming_the_option(tmp_path, args, option):
    where = ["--out", tmp_path / "op"] if args[0] == "synth" else ["--workspace", tmp_path]
    res = run(*args, *where)
    assert res.exit_code == 2, res.output
    assert f"Invalid value for '{option}'" in text(res) and "Traceback" not in res.output
    assert list(tmp_path.iterdir()) == []


def test_a_day_reaches_the_command_as_a_date(tmp_path, monkeypatch):
    seen = {}

    def fake_score(workspace, as_of, progress=None, **engine):
        seen["as_of"] = as_of
        raise FileNotFoundError(f"{workspace}: stop here")

    monkeypatch.setattr(opencem.nps.score, "score", fake_score)
    res = run("score", "--workspace", tmp_path, "--as-of", "2026-10-19")
    assert res.exit_code == 2 and text(res) == f"error: {tmp_path}: stop here"
    assert type(seen["as_of"]) is dt.date and seen["as_of"] == dt.date(2026, 10, 19)


def test_a_missing_workspace_is_one_line(tmp_path):
    res = run("score", "--workspace", tmp_path / "nowhere")
    assert res.exit_code == 2
    out = text(res)
    assert out.startswith("error:") and out.count("error:") == 1 and out.endswith("run `opencem train nps` first")
    assert isinstance(res.exception, SystemExit) and "Traceback" not in res.output


def test_our_input_checks_are_one_line(tmp_path):
    res = run("contracts", "no_such_table")
    assert res.exit_code == 2 and text(res).startswith("error: unknown table 'no_such_table'; known: subscribers")
    res = run("synth", "--out", tmp_path / "op", "--days", "1")  # checked before anything is written
    assert res.exit_code == 2 and text(res).endswith(" error: --days must be between 3 and 400")
    assert list(tmp_path.iterdir()) == []
    res = run("demo", "--engine", "oracle")
    assert res.exit_code == 2 and text(res) == "error: unknown engine 'oracle': use duckdb or spark"


def test_data_failing_validation_is_one_line_with_exit_code_1(tmp_path, monkeypatch):
    def fake_score(workspace, as_of, progress=None, **engine):
        raise ContractError("subscribers.parquet: column 'plan' is missing")

    monkeypatch.setattr(opencem.nps.score, "score", fake_score)
    res = run("score", "--workspace", tmp_path)
    assert res.exit_code == 1 and text(res) == "error: subscribers.parquet: column 'plan' is missing"


@pytest.mark.parametrize("bug", [KeyError("plan_id"), TypeError("unsupported operand"), AttributeError("no attribute"),
                                 ValueError("operands could not be broadcast together")])
def test_a_programming_error_keeps_its_traceback(tmp_path, monkeypatch, bug):
    def broken_score(workspace, as_of, progress=None, **engine):
        raise bug  # not one of our input checks: a ValueError from here is a library's or a bug

    monkeypatch.setattr(opencem.nps.score, "score", broken_score)
    res = run("score", "--workspace", tmp_path)
    assert res.exit_code == 1
    assert res.exception is bug and "error:" not in res.output


def test_validate_keeps_the_operators_own_words_and_says_so(tmp_path):
    (tmp_path / "care_contacts.csv").write_text(
        "contact_id,subscriber_id,contact_time,channel,category,is_complaint,resolved\n"
        "1,s1,2026-10-05 10:00:00,call_centre,Roaming charges,true,false\n"
        "2,s2,2026-10-05 11:00:00,call_centre,billing,false,true\n")
    res = run("validate", tmp_path)
    assert res.exit_code == 0, res.output
    assert ("warning care_contacts.csv column 'category': 1 value(s) outside OpenCEM's defaults, kept as the "
            "operator's own: 'Roaming charges' (1 rows)") in res.output
    assert "all files meet their contracts" in res.output and not (tmp_path / "_quarantine").exists()


def test_doctor_says_what_is_missing_and_what_it_takes_away(tmp_path):
    (tmp_path / "care_contacts.csv").write_text(
        "contact_id,subscriber_id,contact_time,channel,category,is_complaint,resolved\n"
        "1,s1,2026-10-05 10:00:00,call_centre,Roaming charges,true,false\n"
        "2,s2,2026-10-07 11:00:00,call_centre,billing,false,true\n")
    (tmp_path / "surveys.csv").write_text("survey_id,subscriber_id,survey_time,channel,score\n")
    res = run("doctor", tmp_path, "--json", tmp_path / "doctor.json")
    assert res.exit_code == 1, res.output
    out = text(res)
    assert "subscribers: `opencem measure` stops without it" in out
    assert "nps_tracker: the NPS level is the survey respondents'" in out
    assert "warning care_contacts.csv column 'category': 1 value(s) outside OpenCEM's defaults" in out
    import json
    doc = json.loads((tmp_path / "doctor.json").read_text())
    by = {t["table"]: t for t in doc["tables"]}
    assert doc["ready_for_measure"] is False
    assert (by["care_contacts"]["status"], by["care_contacts"]["rows"], by["care_contacts"]["first_day"], by["care_contacts"]["last_day"]) == (
        "ready", 2, "2026-10-05", "2026-10-07")
    assert by["surveys"]["status"] == "empty" and "needs at least 300" in by["surveys"]["effect"]
    assert (by["xdr"]["status"], by["portouts"]["status"]) == ("missing", "absent")
