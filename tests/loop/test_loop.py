"""The closed loop end to end on a small synthetic operator, and its report in a real browser."""

import json
import os
import shutil
from pathlib import Path

import pytest
from loop.tmf_server import TicketServer
from report.browser import check_report_in_browser

from opencem.demo import LoopConfig, run_loop
from opencem.loop import tmf
from opencem.loop.prioritise import _days_seen, _spend, merge_episodes
from opencem.loop.ticketing import send_tickets

# the smallest operator whose answers still split into fit / validation / test weeks before the fix day
CFG = LoopConfig(subscribers=3_000, days=19, seed=7, fix_day=14, budget=8, survey_rate=1.0, workers=2, trend_every=3)


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """The whole closed loop once, on its own operator (it generates the world again with the fixes it
    chose): the suite's one end-to-end run."""
    out = tmp_path_factory.mktemp("loop")
    res = run_loop(out, CFG, say=lambda _m: None)
    yield out, res
    shutil.rmtree(out, ignore_errors=True)  # two worlds and their workspaces: not needed past this module


@pytest.mark.slow
def test_loop_writes_plans_tickets_care_and_verification(loop):
    out, res = loop
    s = res.summary
    plans = json.loads((out / "before" / "workspace" / "loop" / "prioritise" / "plans.json").read_text())
    requests = json.loads((out / "before" / "workspace" / "loop" / "prioritise" / "fix_requests.json").read_text())
    assert plans and requests
    assert len(list((out / "tickets" / "troubleTicket").glob("*.json"))) == len(plans)
    if tmf.spec_available("TMF621"):
        for p in (out / "tickets" / "troubleTicket").glob("*.json"):
            tmf.validate(json.loads(p.read_text()), "TMF621", "TroubleTicket_FVO")
    # the fixes carried out are ours, within the budget, and the after-world's truth knows them
    cost = {r["fix_id"]: r for r in res_candidates(out)}
    assert sum(cost[r["fix_id"]]["cost_units"] for r in requests) <= CFG.budget
    # each expected lift and the plan's expected gain carry an interval for the model's error
    for r in cost.values():
        assert 0 <= r["expected_nps_lift_low"] <= r["expected_nps_lift"] <= r["expected_nps_lift_high"]
    ours = s["ranking"]["ours"]
    assert ours["expected_low"] < ours["expected"] < ours["expected_high"]
    truth = {r["fix_id"] for r in _read(out / "after" / "operator" / "truth" / "fixes.parquet")}
    assert truth == {r["fix_id"] for r in requests}
    for v in s["verification"]:
        for e in v["effects"] + [v["placebo"]]:
            assert e["ci_low"] <= e["estimate"] <= e["ci_high"]
        assert v["subscribers"] >= 10 and v["controls"] >= 5
        assert v["true_nps_lift_treated"] is not None and "treated_ids" not in v
    assert (out / "care" / "outreach.csv").exists()
    assert 'id="table-campaigns"' in res.report.read_text()  # the campaign lists (opencem.segments) are in the report
    assert s["ranking"]["ours"]["fixes"] and s["ranking"]["severity"]["fixes"]


@pytest.mark.slow
@pytest.mark.browser
def test_report_renders_offline_in_chromium(loop):
    out, res = loop
    shot = out / "report.png"
    state = check_report_in_browser(res.report, shot)
    assert state["map_hexagons"] > 0 and state["ranking_bars"] > 0
    if os.environ.get("OPENCEM_SCREENSHOT"):
        shutil.copy(shot, os.environ["OPENCEM_SCREENSHOT"])


@pytest.mark.slow
def test_plans_sent_twice_make_one_ticket_each(loop, tmp_path):
    out, _ = loop
    plans = json.loads((out / "before" / "workspace" / "loop" / "prioritise" / "plans.json").read_text())
    docs = [tmf.trouble_ticket(p) for p in plans]
    with TicketServer(fail_next=1) as srv:
        first = send_tickets(docs, srv.endpoint("troubleTicket"), tmp_path / "ledger.json", backoff=0.01)
        again = send_tickets(docs, srv.endpoint("troubleTicket"), tmp_path / "ledger.json", backoff=0.01)
        assert (first.sent, again.sent, again.skipped) == (len(plans), 0, len(plans))
        assert srv.count("troubleTicket") == len(plans)


def test_episodes_on_overlapping_cells_are_one_candidate():
    import datetime as dt

    t = dt.datetime(2026, 10, 5, 18)
    ep = lambda i, cause, cells, model=None: {"episode_id": i, "cause": cause, "cells": cells, "device_model": model,  # noqa: E731
                                              "grid_list": ["g"], "start_time": t, "end_time": t}
    groups = merge_episodes([ep("E1", "congestion", ["A", "B"]), ep("E2", "congestion", ["B"]), ep("E3", "transport", ["B"]),
                             ep("E4", "non_network", ["A"]), ep("D1", "device", [], "Nova X5"), ep("E5", "congestion", ["Z"])])
    assert [(g["action"], sorted(g["cells"]), [e["episode_id"] for e in g["episodes"]]) for g in groups] == [
        ("fix_device", [], ["D1"]), ("add_capacity", ["A", "B"], ["E1", "E2"]), ("fix_transport", ["B"], ["E3"]),
        ("add_capacity", ["Z"], ["E5"])]


def test_an_episode_that_ended_at_midnight_was_not_seen_that_day():
    import datetime as dt

    day, as_of = dt.date(2026, 10, 24), dt.date(2026, 10, 26)
    start = dt.datetime(2026, 10, 23, 8)
    ended = [{"start_time": start, "end_time": dt.datetime(2026, 10, 23, 12)},
             {"start_time": start, "end_time": dt.datetime(2026, 10, 24)}]  # its last hour: 23:00-24:00
    assert not _days_seen(ended, day, as_of)
    assert _days_seen(ended + [{"start_time": start, "end_time": dt.datetime(2026, 10, 24, 1)}], day, as_of)


def test_the_truth_of_a_verification_is_over_its_own_treated(tmp_path):
    """A verification's interval is compared with the true lift of the subscribers it treated (its regular
    users), not of everyone the fix touched; treated subscribers the fix never touched count 0."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from opencem.demo import true_lift_of
    from opencem.ingest.pseudonym import Pseudonymiser, load_key
    from opencem.workspace import Workspace

    (tmp_path / "op" / "truth").mkdir(parents=True)
    pq.write_table(pa.table({"fix_id": ["F1", "F1", "F2"], "subscriber_id": ["+1", "+2", "+1"],
                             "answer_nps_with_fix": [0.5, 0.3, 0.9], "answer_nps_without_fix": [0.2, 0.3, 0.0]}),
                   tmp_path / "op" / "truth" / "fix_affected.parquet")
    ws = tmp_path / "ws"
    key = load_key(Workspace(ws).pseudonym_key, create=True)
    p1, p2, p3 = Pseudonymiser(key).column(pa.chunked_array([["+1", "+2", "+3"]])).to_pylist()
    assert true_lift_of(tmp_path / "op", ws, "F1", [p1]) == 30.0
    assert true_lift_of(tmp_path / "op", ws, "F1", [p1, p2, p3]) == 10.0  # +3 was never touched: 0
    assert true_lift_of(tmp_path / "op", ws, "F1", []) is None


def test_budget_passes_over_a_fix_that_does_not_fit():
    import pyarrow as pa

    t = pa.table({"rank": [1, 2, 3], "cost_units": [4, 4, 1]})
    assert _spend(t, "rank", 5) == [0, 2]
    assert _spend(t, "rank", 0) == []
    # a fix expected to gain nothing is not bought, even when it fits
    t = t.append_column("gain", pa.array([0.5, 0.2, 0.0]))
    assert _spend(t, "rank", 5, worth="gain") == [0]


def _read(path: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def res_candidates(out: Path) -> list[dict]:
    return _read(out / "before" / "workspace" / "loop" / "prioritise" / "candidates.parquet")


@pytest.mark.slow
def test_tickets_command_exports_and_sends_once(loop, tmp_path):
    from typer.testing import CliRunner

    from opencem.cli import app

    out, _ = loop
    ws = out / "before" / "workspace"
    n = len(json.loads((ws / "loop" / "prioritise" / "plans.json").read_text()))
    with TicketServer() as srv:
        args = ["tickets", "--workspace", str(ws), "--out", str(tmp_path / "t"), "--endpoint", srv.endpoint("troubleTicket")]
        first, again = CliRunner().invoke(app, args), CliRunner().invoke(app, args)
        assert first.exit_code == 0 and again.exit_code == 0, first.output + again.output
        assert f"sent {n}, already sent 0" in first.output and f"sent 0, already sent {n}" in again.output
        assert srv.count("troubleTicket") == n
    assert len(list((tmp_path / "t" / "serviceProblem").glob("*.json"))) == n
