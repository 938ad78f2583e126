"""The churn stage on a small synthetic operator: no look-ahead, probabilities, repeatability, the
retention list, the command line."""

import datetime as dt
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from opencem.churn.features import CAUSES, build
from opencem.churn.model import HORIZON_MONTHS, MONTH_DAYS
from opencem.churn.score import ACTIONS, SAVE_RATES, load_save_rates, retention_list, score_churn
from opencem.churn.train import dataset
from opencem.cli import app
from opencem.indicators.tree import load_tree
from opencem.nps.features import base_requests
from opencem.workspace import Workspace

pytestmark = pytest.mark.slow  # builds a synthetic operator (tests/churn/conftest.py)

# the single-file lake tables and the column that dates each row
DATED = {"care_contacts": "contact_time", "surveys": "survey_time", "nps_tracker": "answer_time",
         "survey_invitations": "invite_time", "portouts": "portout_date", "tariffs": "valid_from",
         "subscriber_contracts": "start_date"}


def _first_day(ws: Path) -> dt.date:
    with Workspace(ws).session(tables=("cei_subscriber_day",)) as e:
        return e.query_row("SELECT min(day) FROM cei_subscriber_day")[0]


def _truncated(ws: Path, dst: Path, day: dt.date) -> Path:
    """A copy of workspace ``ws`` holding only what was known before ``day``: day partitions from it on are
    left out, dated rows from it on are dropped (the models are not copied)."""
    def skip(folder, names):
        return [n for n in names if (n.startswith("day=") and n[4:] >= str(day)) or (Path(folder) == ws and n == "models")]

    shutil.copytree(ws, dst, copy_function=os.link, ignore=skip)
    for table, col in DATED.items():
        for f in (dst / "lake" / table).glob("*.parquet"):
            t = pq.read_table(f)
            keep = pc.less(pc.cast(t[col], pa.date32()), pa.scalar(day, pa.date32()))
            f.unlink()  # a hard link: unlink before writing, so the original stays whole
            pq.write_table(t.filter(keep), f)
    return dst


def test_features_and_labels_of_a_day_use_nothing_from_that_day_on(churn_op, tmp_path):
    day = _first_day(churn_op.ws) + dt.timedelta(days=44)
    cut = _truncated(churn_op.ws, tmp_path / "cut", day)
    tree = load_tree()
    out = []
    for ws in (churn_op.ws, cut):
        with Workspace(ws).session() as e:
            out.append(build(e, base_requests(e, day), tree))
    assert out[0].num_rows > 900
    assert out[0].equals(out[1])  # the same features without the days from `day` on
    # labels known before `day`: the same from the whole workspace as from the truncated one
    full, _, cutoff, _ = dataset(churn_op.ws, cutoff=day, min_history=7, with_nps=False)
    part, _, _, _ = dataset(cut, cutoff=day, min_history=7, with_nps=False)
    assert cutoff == day
    cols = ["subscriber_id", "as_of", "observed_months", "event_month"]
    assert full.select(cols).equals(part.select(cols))
    as_of = np.array(full["as_of"].to_pylist(), dtype="datetime64[D]")
    obs, ev = full["observed_months"].to_numpy(), full["event_month"].to_numpy()
    assert (as_of + obs * MONTH_DAYS <= np.datetime64(day)).all()  # every observed month is over before the cutoff
    assert ((ev == 0) | (ev <= obs)).all()
    assert (ev > 0).sum() >= 3  # there are port-outs to learn from
    assert len(set(full["as_of"].to_pylist())) == 2  # days 7 and 14: a month after each is over before the cutoff


def test_model_card_has_a_time_split_without_look_ahead(churn_op):
    c = churn_op.model.card
    w = c["training_window"]
    assert w["fit_days"][1] < w["test_days"][0]
    assert c["metrics"], "the later scoring days are judged"
    assert {f["kind"] for f in c["features"]} >= {"network", "non-network", "profile", "contract"}
    md = (Workspace(churn_op.ws).model("churn") / "model_card.md").read_text()
    assert "ROC-AUC" in md and "commitment_days_left" in md


def test_probabilities_are_monthly_hazards_that_add_up(churn_op):
    s = churn_op.scored.scores
    pm = np.column_stack([s[f"p_month{k}"].to_numpy() for k in range(1, HORIZON_MONTHS + 1)])
    p4 = s["p_4m"].to_numpy()
    assert ((pm >= 0) & (pm <= 1)).all() and ((p4 >= 0) & (p4 < 1)).all()
    np.testing.assert_allclose(pm.sum(axis=1), p4, atol=5e-6)  # each rounded to 6 decimals
    # the hazards behind them: h_k = p_k / P(still a customer at the start of month k), all in [0, 1]
    alive = 1 - np.cumsum(np.column_stack([np.zeros(len(pm)), pm[:, :-1]]), axis=1)
    h = pm / alive
    assert ((h >= -1e-6) & (h <= 1)).all()
    # one row per subscriber in the base on that day
    assert s.num_rows == len(set(s["subscriber_id"].to_pylist()))


def test_causes_and_evidence_of_the_riskiest(churn_op):
    s = churn_op.scored.scores
    explained = s.filter(pc.is_valid(s["cause"]))
    assert explained.num_rows == int(np.ceil(0.2 * s.num_rows))
    assert set(explained["cause"].to_pylist()) <= set(CAUSES)
    # the explained are the riskiest: none of the others is riskier than the least risky explained one
    rest = s.filter(pc.is_null(s["cause"]))
    assert pc.max(rest["p_4m"]).as_py() <= pc.min(explained["p_4m"]).as_py()
    for r in explained.to_pylist():
        assert r["evidence"].startswith(r["cause"].replace("_", " ")), r
        if r["cause"] == "network" and r["evidence_cell"]:
            assert f"cell {r['evidence_cell']}" in r["evidence"]


def test_retention_list_is_ranked_by_expected_value_saved(churn_op):
    r = churn_op.scored.retention
    v = r["expected_value_saved"].to_numpy()
    assert r.num_rows > 0 and (np.diff(v) <= 0).all()
    assert r["rank"].to_pylist() == list(range(1, r.num_rows + 1))
    for row in r.to_pylist():
        assert row["action"] == ACTIONS[row["cause"]] and row["save_rate"] == SAVE_RATES[row["action"]]
        assert row["expected_value_saved"] == pytest.approx(row["p_4m"] * row["arpu_monthly"] * 12 * row["save_rate"], abs=1e-3)
    # a network fix that saves nobody sends every network cause to the bottom of the list
    rates = {**SAVE_RATES, "network fix pending": 0.0}
    again = retention_list(churn_op.scored.scores, rates, 12.0)
    causes = again["cause"].to_pylist()
    if "network" in causes and set(causes) != {"network"}:
        first_net = causes.index("network")
        assert set(causes[first_net:]) == {"network"}


def test_save_rates_from_yaml(tmp_path):
    f = tmp_path / "rates.yaml"
    f.write_text("price offer: 0.5\n")
    assert load_save_rates(f)["price offer"] == 0.5
    f.write_text("free phone: 0.5\n")
    with pytest.raises(Exception, match="unknown action 'free phone'"):
        load_save_rates(f)


def test_rescoring_gives_identical_tables(churn_op, clone):
    ws = clone(churn_op.ws)
    as_of = churn_op.scored.as_of
    again = score_churn(ws, as_of)
    assert again.scores.equals(churn_op.scored.scores)
    assert again.retention.equals(churn_op.scored.retention)
    stored = pq.read_table(Workspace(ws).churn / "scores" / f"as_of={as_of}" / "part.parquet")
    assert stored.equals(again.scores)


def test_cli_scores_churn_and_rejects_an_unknown_day_in_one_line(churn_op, clone):
    ws = clone(churn_op.ws)
    runner = CliRunner()
    res = runner.invoke(app, ["score", "churn", "--workspace", str(ws), "--top", "3"])
    assert res.exit_code == 0, res.output
    assert "retention list" in res.output and "save rates assumed" in res.output
    res = runner.invoke(app, ["score", "churn", "--workspace", str(ws), "--as-of", "2031-01-01"])
    assert res.exit_code == 2
    assert res.output.strip().startswith("error: --as-of 2031-01-01: outside the measured data")
    assert len(res.output.strip().splitlines()) == 1
    res = runner.invoke(app, ["score", "churn", "--workspace", str(ws / "nowhere")])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
