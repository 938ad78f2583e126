"""The network NPS model end to end: trained on a synthetic operator's survey answers, scored over its
base, checked against the generator's truth, stored per as-of day and driven from the command line."""

import datetime as dt
import json
import shutil
from types import SimpleNamespace

import h3
import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from scipy.stats import spearmanr
from typer.testing import CliRunner

from opencem.cli import app
from opencem.engine import compare_tables
from opencem.indicators.tree import load_tree
from opencem.ingest.pseudonym import Pseudonymiser, load_key
from opencem.nps.features import base_requests, build_features, feature_list
from opencem.nps.model import NpsModel
from opencem.nps.score import score
from opencem.nps import train as train_module
from opencem.nps.train import MIN_HISTORY_DAYS, MIN_TRACKER_ANSWERS, train_nps
from opencem.vocabulary import NON_NETWORK
from opencem.workspace import Workspace

TABLES = ("scores", "segments", "potential_detractors")
DIMENSIONS = {"base", "plan", "value_tier", "device_model", "home_area", "grid", "cell"}
CAUSES = {"coverage", "interference", "congestion", "transport", "core_dns", "device", "network (unclear)", NON_NETWORK}
DAY = dt.timedelta(days=1)
KEYS = {"scores": ["subscriber_id"], "segments": ["dimension", "segment"]}


def partition(ws, table, as_of):
    return pq.read_table(Workspace(ws).nps / table / f"as_of={as_of}" / "part.parquet")


def one(ws, sql, **params):
    """The single value of a query over a workspace's tables."""
    with Workspace(ws).session() as engine:
        return engine.query_row(sql, params)[0]


def first_day(ws):
    return one(ws, "SELECT min(day) FROM cei_subscriber_day")


# -- 1. training ----------------------------------------------------------------------------------------
def test_model_card_names_features_windows_and_data(shared):
    card = shared.model.card
    feats = card["features"]
    assert [f["name"] for f in feats] == shared.model.encoder.names
    assert all(f["node"] for f in feats)
    assert {f["kind"] for f in feats} == {"network", "non-network", "profile"}
    assert {"overall", "radio.coverage", "care.price", "profile"} <= {f["node"] for f in feats}

    w = card["training_window"]
    assert w["fit"][0] <= w["fit"][1] < w["validation"][0] <= w["validation"][1] < w["test"][0] <= w["test"][1]
    assert w["fit"][0] >= str(first_day(shared.ws) + MIN_HISTORY_DAYS * DAY)  # short histories left out
    assert all(w["answers"][k] > 0 for k in ("fit", "validation", "test"))
    # every survey answer after the first days is used, once; the tracker's answers of the fit days join the fit
    usable = one(shared.ws, "SELECT count(*) FROM surveys WHERE CAST(survey_time AS DATE) >= $day",
                 day=dt.date.fromisoformat(w["fit"][0]))
    assert sum(w["answers"][k] for k in ("fit", "validation", "test")) == usable
    tracked = one(shared.ws, "SELECT count(*) FROM nps_tracker WHERE CAST(answer_time AS DATE) >= $day",
                  day=dt.date.fromisoformat(w["fit"][0]))
    assert 0 < w["answers"]["fit_tracker"] < tracked
    # the split only chooses rounds and link: the model that scores is refit on every answer
    assert card["latent_score"]["refit_on_answers"] == usable + tracked
    assert {f["direction"] for f in feats} == {-1, 0, 1}

    fp = card["data"]["fingerprint"]
    assert len(fp) == 16 and int(fp, 16) >= 0
    assert card["metrics_on_respondents"]["test"]["answers"] == w["answers"]["test"]
    assert card["metrics_on_respondents"]["test"]["detractor_auc"] > 0.6


def test_saved_model_gives_identical_probabilities(shared, tmp_path):
    loaded = NpsModel.load(shared.model.save(tmp_path / "model"))
    with Workspace(shared.ws).session() as engine:
        x_table = build_features(engine, base_requests(engine, shared.scored.as_of - 2 * DAY), feature_list(load_tree()))
    x = shared.model.encoder.matrix(x_table)
    assert x.shape[0] > 2500 and np.array_equal(x, loaded.encoder.matrix(x_table), equal_nan=True)
    assert np.array_equal(shared.model.proba(x), loaded.proba(x))
    assert np.array_equal(shared.model.predict(x)["expected_score"], loaded.predict(x)["expected_score"])
    assert loaded.card["features"] == shared.model.card["features"]
    assert loaded.card["data"]["fingerprint"] == shared.model.card["data"]["fingerprint"]


# -- 2. calibration on later answers ------------------------------------------------------------------------
def test_nps_of_later_answers_is_predicted_within_12_points(shared):
    card = shared.model.card
    m = card["metrics_on_respondents"]["test"]
    lo, hi = card["training_window"]["test"]
    answered = one(shared.ws, """SELECT 100 * (avg(CAST(score >= 9 AS INT)) - avg(CAST(score <= 6 AS INT))) FROM surveys
        WHERE CAST(survey_time AS DATE) BETWEEN $lo AND $hi""", lo=dt.date.fromisoformat(lo), hi=dt.date.fromisoformat(hi))
    assert m["nps_answers"] == pytest.approx(answered, abs=1e-6)
    assert abs(m["nps_predicted"] - m["nps_answers"]) <= 12


# -- 3. scoring ---------------------------------------------------------------------------------------
def test_every_subscriber_in_the_base_is_scored_once(shared):
    s = shared.scored.scores
    ids = s["subscriber_id"].to_pylist()
    assert len(ids) == len(set(ids))
    truth = pq.read_table(shared.data / "truth" / "subscriber_daily", columns=["subscriber_id", "date"])
    truth = truth.filter(pc.equal(truth["date"], shared.scored.as_of - DAY))  # active on the last day before as_of
    p = Pseudonymiser(load_key(Workspace(shared.ws).pseudonym_key))
    assert set(ids) == {p.one(r) for r in truth["subscriber_id"].to_pylist()}
    assert set(s["as_of"].to_pylist()) == {shared.scored.as_of}


def test_scores_are_probabilities_and_answers(shared):
    s = shared.scored.scores
    p = np.column_stack([s[c].to_numpy() for c in ("p_detractor", "p_passive", "p_promoter")])
    assert np.all((p >= 0) & (p <= 1))
    assert np.abs(p.sum(axis=1) - 1).max() < 1e-9
    e = s["expected_score"].to_numpy()
    assert np.all((e >= 0) & (e <= 10)) and e.std() > 0.1
    assert s["predicted_class"].to_pylist() == [("detractor", "passive", "promoter")[i] for i in p.argmax(axis=1)]


def test_segments_cover_every_dimension_with_intervals(shared):
    seg, s = shared.scored.segments, shared.scored.scores
    assert set(seg["dimension"].to_pylist()) == DIMENSIONS
    for r in seg.to_pylist():
        assert r["ci_low"] <= r["nps"] <= r["ci_high"], r
        assert r["subscribers"] > 0
    base = shared.scored.base
    assert base["subscribers"] == s.num_rows
    want = 100 * (s["p_promoter"].to_numpy().mean() - s["p_detractor"].to_numpy().mean())
    assert base["nps"] == pytest.approx(want, abs=0.005 + 1e-9)
    assert base["ci_high"] - base["ci_low"] > 0
    plans = seg.filter(pc.equal(seg["dimension"], "plan"))
    assert sum(plans["subscribers"].to_pylist()) == s.num_rows
    assert set(plans["segment"].to_pylist()) == set(s["plan"].to_pylist())


def test_grids_are_h3_cells_of_resolution_9(shared):
    s, seg = shared.scored.scores, shared.scored.segments
    grids = [g for g in s["grid"].to_pylist() if g is not None]
    assert len(grids) > 0.9 * s.num_rows
    grid_segments = seg.filter(pc.equal(seg["dimension"], "grid"))["segment"].to_pylist()
    assert set(grid_segments) == set(grids)
    for g in set(grids):
        assert h3.is_valid_cell(g) and h3.get_resolution(g) == 9, g


# -- 4. against the synthetic truth -------------------------------------------------------------------------
def test_detractor_probability_follows_true_satisfaction(shared):
    day = shared.scored.as_of - DAY
    truth = pq.read_table(shared.data / "truth" / "subscriber_daily", columns=["subscriber_id", "date", "satisfaction"])
    truth = truth.filter(pc.equal(truth["date"], day))
    p = Pseudonymiser(load_key(Workspace(shared.ws).pseudonym_key))
    sat = dict(zip((p.one(r) for r in truth["subscriber_id"].to_pylist()), truth["satisfaction"].to_pylist()))
    s = shared.scored.scores
    pairs = [(pd, sat[i]) for i, pd in zip(s["subscriber_id"].to_pylist(), s["p_detractor"].to_pylist()) if i in sat]
    assert len(pairs) == s.num_rows
    rho = spearmanr([a for a, _ in pairs], [b for _, b in pairs]).statistic
    assert rho < -0.3


# -- 5. storage and risk flags ------------------------------------------------------------------------------
def test_rescoring_the_same_day_stores_identical_tables(shared, clone):
    ws = clone(shared.ws)
    day = shared.scored.as_of
    before = {t: partition(ws, t, day) for t in TABLES}
    assert before["scores"].num_rows == shared.scored.scores.num_rows
    score(ws, day, shared.model)
    for t in ("scores", "segments"):
        after = partition(ws, t, day)
        assert after.num_rows == before[t].num_rows > 0, t
        assert after.equals(before[t]), (t, compare_tables(before[t], after, KEYS[t]))
    # the evidence (cell KPI and radio averages) is summed in parallel and may differ in the last bit:
    # every other value identical, floats to 1e-9 as for the measure tables
    after = partition(ws, "potential_detractors", day)
    assert after.num_rows == before["potential_detractors"].num_rows > 0
    assert compare_tables(before["potential_detractors"], after, ["rank"]) == []
    assert sorted(p.name for p in (Workspace(ws).nps / "scores").iterdir()) == [f"as_of={day}"]  # no temp folders left


def test_later_scoring_flags_who_fell_to_detractor(shared, clone):
    ws = clone(shared.ws, skip=("nps",))
    early, late = shared.scored.as_of - 4 * DAY, shared.scored.as_of
    first = score(ws, early, shared.model)
    assert first.scores["previous_class"].null_count == first.scores.num_rows
    assert not any(first.scores["risk_flag"].to_pylist())

    second = score(ws, late, shared.model)
    before = dict(zip(first.scores["subscriber_id"].to_pylist(), first.scores["predicted_class"].to_pylist()))
    s = second.scores
    prev, now, flag = (s[c].to_pylist() for c in ("previous_class", "predicted_class", "risk_flag"))
    assert prev == [before.get(i) for i in s["subscriber_id"].to_pylist()]
    assert s["previous_class"].null_count < 0.05 * s.num_rows
    assert flag == [w is not None and w != "detractor" and c == "detractor" for w, c in zip(prev, now)]
    assert any(flag)
    assert partition(ws, "scores", late).equals(s)


def test_main_places_kept_and_advanced_equal_the_whole_window(shared, clone):
    """Score keeps each window's counts of sessions per cell and reports per place; a later day advances them
    (adds the days since, drops the days gone), and gives the main cells and places of a window counted whole.
    A day measure wrote again since is not trusted: the window is counted whole."""
    from opencem.nps import places

    ws = clone(shared.ws, skip=("nps",))
    w = Workspace(ws)
    start = first_day(ws) + 10 * DAY
    with w.session() as engine:
        for as_of in (start, start + DAY, start + 4 * DAY):
            base = places._usable_state(w, as_of, places._day_prints(w))
            assert base == (None if as_of == start else previous)
            advanced = places.main_places(engine, w, as_of)
            assert sorted(p.name for p in (w.nps / places.STATE).iterdir()) == [f"as_of={as_of}"]  # older states go
            shutil.rmtree(w.nps / places.STATE)
            whole = places.main_places(engine, w, as_of)
            assert advanced.num_rows > 0 and advanced.sort_by("subscriber_id").equals(whole.sort_by("subscriber_id")), as_of
            previous = as_of
        # a day of the kept window measured again: its files are new, and the kept counts are not used
        part = next((w.measure / "subscriber_cell_day" / f"day={previous - 3 * DAY}").glob("*.parquet"))
        data = part.read_bytes()
        part.unlink()  # a hard link: unlink before writing, so the fixture's workspace stays whole
        part.write_bytes(data)
        assert places._usable_state(w, previous + DAY, places._day_prints(w)) is None
        # trusted again once its manifest has the day's new fingerprint; not when it keys subscribers another
        # way (an older release's, by the pseudonym's text)
        manifest = w.nps / places.STATE / f"as_of={previous}" / places.MANIFEST
        doc = json.loads(manifest.read_text())
        doc["days"] = {d: v for d, v in places._day_prints(w).items() if d in doc["days"]}
        manifest.write_text(json.dumps(doc))
        assert places._usable_state(w, previous + DAY, places._day_prints(w)) == previous
        manifest.write_text(json.dumps({**doc, "key": "subscriber_id"}))
        assert places._usable_state(w, previous + DAY, places._day_prints(w)) is None


def test_features_of_the_base_read_whole_days_and_equal_the_per_request_join(shared):
    """Scoring the base reads each window's days for everyone instead of joining each day to its request;
    the features are the same either way, and a sample of the base keeps the per-request join."""
    feats = feature_list(load_tree())
    with Workspace(shared.ws).session() as engine:
        as_of = first_day(shared.ws) + 12 * DAY
        req = base_requests(engine, as_of)
        joined = build_features(engine, req, feats, whole_days=False)
        whole = build_features(engine, req, feats, whole_days=True)
        assert joined.num_rows == req.num_rows > 0 and whole.equals(joined)
        sample = base_requests(engine, as_of, every=3)
        assert build_features(engine, sample, feats).equals(joined.take(np.arange(2, joined.num_rows, 3)))


# -- 6. explanations and potential detractors -------------------------------------------------------------------
def test_potential_detractors_are_ranked_and_explained(shared):
    d, s = shared.scored.detractors, shared.scored.scores
    likely = s.filter(pc.greater_equal(s["p_detractor"], 0.5))
    assert d.num_rows == likely.num_rows > 0
    assert set(d["subscriber_id"].to_pylist()) == set(likely["subscriber_id"].to_pylist())
    assert all(p >= 0.5 for p in d["p_detractor"].to_pylist())
    rows = d.to_pylist()
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    keys = [(not r["network_cause"], -r["arpu_monthly"]) for r in rows]
    assert keys == sorted(keys)
    assert any(r["network_cause"] for r in rows)
    for r in rows:
        assert r["cause"] in CAUSES
        assert r["network_cause"] == (r["cause"] != NON_NETWORK)
        if r["network_cause"]:
            assert r["evidence_cell"], r
            assert f"cell {r['evidence_cell']}" in r["reason"], r


def test_likely_detractors_have_drivers(shared):
    s = shared.scored.scores
    likely = s.filter(pc.greater_equal(s["p_detractor"], 0.5)).to_pylist()
    explained = [r for r in likely if r["network_drivers"] or r["nonnetwork_drivers"]]
    assert len(explained) >= 0.5 * len(likely) > 0
    for r in likely:
        assert r["network_push"] is not None and r["nonnetwork_push"] is not None
        if r["network_drivers"]:
            assert r["top_network_driver"] is not None and "(+" in r["network_drivers"]
    # the others are not explained (TreeSHAP is for the likely detractors only)
    others = s.filter(pc.less(s["p_detractor"], 0.5))
    assert others.num_rows > 0 and others["network_push"].null_count == others["network_drivers"].null_count == others.num_rows


# -- 7. anchoring ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def anchored(shared):
    """The same workspace trained again, anchored to a study that found NPS 20 five days before the end."""
    day = shared.scored.as_of - 5 * DAY
    return SimpleNamespace(day=day, model=train_nps(shared.ws, anchor=[(day, 20.0)]))


def test_anchor_sets_the_base_nps_of_that_day(shared, anchored, clone):
    assert anchored.model.level == "anchor" and anchored.model.shift != shared.model.shift
    assert anchored.model.card["level"]["anchor"] == {str(anchored.day): 20.0}
    assert anchored.model.card["data"]["fingerprint"] == shared.model.card["data"]["fingerprint"]
    ws = clone(shared.ws, skip=("nps",))
    assert abs(score(ws, anchored.day, anchored.model).base["nps"] - 20.0) <= 1


def test_level_is_the_trackers_and_says_so(shared, clone, monkeypatch):
    """With a representative study the level is the study's; without one it is the respondents', who
    over-represent unhappy customers, and every output says which."""
    assert shared.model.level == "tracker" and shared.model.card["level"]["tracker_answers"] >= MIN_TRACKER_ANSWERS
    assert set(shared.scored.segments["level"].to_pylist()) == {"tracker"}
    monkeypatch.setattr(train_module, "MIN_TRACKER_ANSWERS", 10**9)  # as if the operator had no tracker
    respondents = train_nps(shared.ws, replicas=0)
    assert respondents.level == "respondents" and respondents.shift == 0
    assert respondents.card["level"]["meaning"].startswith("the level of the survey respondents")
    ws = clone(shared.ws, skip=("nps",))
    day = shared.scored.as_of
    assert score(ws, day, respondents).base["nps"] < score(ws, day, shared.model).base["nps"] - 5


def test_training_again_gives_the_same_model(shared, anchored):
    """The anchor only shifts levels: on the same workspace the latent score, the link and the accuracy on
    the answers are those of the first training (LightGBM runs with deterministic=True)."""
    again, first = anchored.model, shared.model
    same = "two trainings on the same workspace give different {}"
    assert again.regressor.model_to_string() == first.regressor.model_to_string(), same.format("latent scores")
    assert again.link == first.link
    assert [r.regressor.model_to_string() for r in again.replicas] == [r.regressor.model_to_string() for r in first.replicas]
    assert again.card["metrics_on_respondents"] == first.card["metrics_on_respondents"]


# -- 8. command line -----------------------------------------------------------------------------------------
def test_cli_trains_and_scores(shared, clone):
    ws = clone(shared.ws, skip=("nps", "models"))
    runner = CliRunner()
    res = runner.invoke(app, ["train", "nps", "--workspace", str(ws)])
    out = " ".join(res.output.split())
    assert res.exit_code == 0, res.output
    assert "detractor AUC" in out or "accuracy on later answers" in out
    model = Workspace(ws).model("nps")
    assert (model / "state.json").is_file() and (model / "model_card.json").is_file()
    res = runner.invoke(app, ["score", "--workspace", str(ws), "--top", "3"])
    assert res.exit_code == 0, res.output
    assert "base network NPS" in " ".join(res.output.split())
    assert (Workspace(ws).nps / "scores" / f"as_of={shared.scored.as_of}" / "part.parquet").is_file()


def test_cli_score_without_a_model_says_to_train(shared, clone):
    ws = clone(shared.ws, skip=("nps", "models"))
    res = CliRunner().invoke(app, ["score", "--workspace", str(ws)])
    assert res.exit_code == 2
    out = " ".join(res.output.split())  # rich wraps long lines at the console width
    assert out.startswith("error:") and out.count("error:") == 1 and out.endswith("run `opencem train nps` first")
    assert "Traceback" not in res.output and not Workspace(ws).nps.exists()


def test_cli_rejects_a_bad_anchor(tmp_path):
    res = CliRunner().invoke(app, ["train", "nps", "--workspace", str(tmp_path), "--anchor", "nonsense"])
    assert res.exit_code == 2
    out = " ".join(res.output.split())
    assert out.startswith("error:") and "--anchor" in out and "DAY=NPS" in out


# -- 9. bad input -----------------------------------------------------------------------------------------------
def test_too_few_surveys_is_a_clear_error(shared, clone):
    ws = clone(shared.ws, skip=("nps", "models"))
    for f in sorted((Workspace(ws).lake / "surveys").rglob("*.parquet")):  # keep one answer in ten
        t = pq.read_table(f)
        f.unlink()  # a hard link: unlink before writing, so the fixture's lake stays whole
        pq.write_table(t.take(np.arange(0, t.num_rows, 10)), f)
    left = one(ws, "SELECT count(*) FROM surveys")
    assert 30 < left < 300
    with pytest.raises(ValueError, match="surveys") as e:
        train_nps(ws)
    assert str(e.value).startswith(f"{Workspace(ws).lake / 'surveys'}: ") and "at least 300" in str(e.value)
    assert not Workspace(ws).model("nps").exists()


@pytest.mark.spark
@pytest.mark.parametrize("where", ["local", "cluster"])
def test_spark_scores_the_same_as_duckdb(shared, clone, where, request):
    """Scoring's SQL (features, places, detractor evidence) on Spark, in one process and on a standalone
    cluster, gives DuckDB's tables: the same probabilities, segments with their intervals, and evidence
    (floats to 1e-9)."""
    master = "local[2]" if where == "local" else request.getfixturevalue("spark_cluster")
    ws = clone(shared.ws, skip=("nps", "twin", "loop"))
    res = score(ws, shared.scored.as_of, engine="spark", spark_master=master)
    for name, keys in (("scores", ["subscriber_id"]), ("segments", ["dimension", "segment"]), ("detractors", ["subscriber_id"])):
        ours, theirs = getattr(shared.scored, name), getattr(res, name)
        assert theirs.num_rows == ours.num_rows > 0, name
        assert compare_tables(ours, theirs, keys=keys, rel=1e-9) == [], name
