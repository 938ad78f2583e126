"""The NPS model's parts on data whose answer is known: the ordinal link, the monotone score, the level
shift and the intervals. Fast: no synthetic operator."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from opencem.nps import model as nps_model
from opencem.nps.model import PARAMS, OrdinalLink, answer_class, critical_value, fit_regressor, nps_of, predict_score
from opencem.nps.score import nps_by_segment


def _answers(rng, n, shift=0.0):
    """A latent score, and 0-10 answers drawn around it with logistic noise."""
    score = rng.normal(7.5, 1.2, n)
    latent = score + shift + rng.logistic(0, 0.8, n)
    return score, np.clip(np.round(latent), 0, 10)


def test_ordinal_link_gives_probabilities_that_move_one_way_with_the_score():
    link = OrdinalLink(1.3, 8.0, 11.0)
    p = link.proba(np.linspace(0, 10, 101))
    assert np.allclose(p.sum(axis=1), 1) and (p >= 0).all()
    assert (np.diff(p[:, 0]) <= 0).all() and (np.diff(p[:, 2]) >= 0).all()
    nps = 100 * (p[:, 2] - p[:, 0])
    assert (np.diff(nps) > 0).all()


def test_ordinal_link_fit_recovers_the_answers_distribution():
    rng = np.random.default_rng(1)
    score, answer = _answers(rng, 20_000)
    y = answer_class(answer)
    link = OrdinalLink.fit(score, y)
    p = link.proba(score)
    for k in range(3):  # fitted class shares match the observed ones
        assert abs(p[:, k].mean() - (y == k).mean()) < 0.01
    # and so do they within score bands
    band = score > 8.5
    assert abs(p[band, 2].mean() - (y[band] == 2).mean()) < 0.03


def test_level_shift_recovers_a_studys_offset():
    rng = np.random.default_rng(2)
    score, answer = _answers(rng, 20_000)
    link = OrdinalLink.fit(score, answer_class(answer))
    s2, a2 = _answers(rng, 20_000, shift=0.6)  # a study whose customers answer 0.6 points higher
    shift = link.shift_for(s2, answer_class(a2))
    assert shift == pytest.approx(0.6, abs=0.08)
    target = nps_of(link.proba(s2 + 0.6))
    assert link.shift_for_nps([(s2, target)]) == pytest.approx(0.6, abs=0.01)


def test_monotone_constraint_holds_for_every_customer():
    """Raising a feature declared 'up' never lowers anyone's score, even where the data say otherwise."""
    rng = np.random.default_rng(3)
    n = 3000
    x = rng.normal(size=(n, 3))
    # the answer rises with x0 overall but falls with it in a band: an unconstrained tree would follow the dip
    y = 7 + 1.0 * x[:, 0] - 2.5 * ((x[:, 0] > 0.5) & (x[:, 0] < 1.0)) + 0.5 * x[:, 1] + rng.normal(0, 0.5, n)
    fit, val = slice(0, 2400), slice(2400, n)
    reg = fit_regressor(x[fit], y[fit], None, x[val], y[val], None, [], [1, 0, 0])
    grid = np.repeat(x[:200], 41, axis=0)
    grid[:, 0] = np.tile(np.linspace(-3, 3, 41), 200)
    s = reg.predict(grid).reshape(200, 41)
    assert (np.diff(s, axis=1) >= -1e-9).all()
    free = fit_regressor(x[fit], y[fit], None, x[val], y[val], None, [], [0, 0, 0])
    s_free = free.predict(grid).reshape(200, 41)
    assert (np.diff(s_free, axis=1) < -1e-6).any()  # the test's data would break it without the constraint
    assert PARAMS["monotone_constraints_method"] == "advanced"


def test_a_compiled_forest_predicts_what_lightgbm_predicts(tmp_path, monkeypatch):
    """Large batches go through the forest compiled by lleaves: the same values, with categories and missing
    values, and the compiled object is cached per model text."""
    rng = np.random.default_rng(5)
    n = 4000
    x = np.column_stack([rng.normal(size=n), rng.integers(0, 12, n).astype(float), rng.normal(size=n)])
    x[rng.random(n) < 0.1, 0] = np.nan
    y = 7 + x[:, 2] + np.where(np.isin(x[:, 1], [2, 5, 7]), -1.5, 0) + np.nan_to_num(x[:, 0]) + rng.normal(0, 0.3, n)
    file = tmp_path / "regressor.txt"
    monkeypatch.setattr(nps_model, "COMPILE_ROWS", 1)
    for rounds in (60, 80):  # a retrained model in the same file is compiled again, not served from the cache
        reg = fit_regressor(x, y, None, x, y, None, [1], [0, 0, 1], rounds=rounds)
        reg.save_model(str(file))
        assert np.abs(predict_score(reg, x, file) - reg.predict(x)).max() < 1e-9
    assert len(list((tmp_path / "compiled").glob("regressor-*.o"))) == 2
    assert np.array_equal(predict_score(reg, x, None), reg.predict(x))  # no file: LightGBM itself
    # a model folder that cannot take the cache (here a file named like its folder) still predicts, uncached
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "compiled").write_text("not a folder")
    reg.save_model(str(ro / "regressor.txt"))
    assert np.abs(predict_score(reg, x, ro / "regressor.txt") - reg.predict(x)).max() < 1e-9
    assert not list(ro.glob("*.tmp"))


def test_an_interval_read_off_few_replicas_takes_students_t():
    """A variance from 10 bootstrap replicas has 9 degrees of freedom; a part known exactly has none to lose."""
    assert abs(critical_value([(4.0, np.inf)]) - 1.96) < 0.01
    assert abs(critical_value([(4.0, 9)]) - 2.262) < 0.001
    mixed = critical_value([(4.0, np.inf), (4.0, 9)])  # Welch-Satterthwaite: 36 degrees of freedom
    assert 1.96 < mixed < 2.262 and abs(mixed - 2.028) < 0.001
    both = critical_value([(np.array([0.0, 4.0]), np.inf), (np.array([4.0, 0.0]), 9)])
    assert abs(both[0] - 2.262) < 0.001 and abs(both[1] - 1.96) < 0.01


def test_segment_intervals_carry_the_model_error():
    rng = np.random.default_rng(4)
    n = 2000
    pd = rng.uniform(0.1, 0.4, n)
    pp = rng.uniform(0.2, 0.5, n)
    scores = pa.table({"p_promoter": pp, "p_detractor": pd, "plan": rng.choice(["a", "b"], n),
                       "value_tier": ["mid"] * n, "device_model": ["m"] * n, "home_area": [None] * n,
                       "grid": ["g"] * n, "main_cell": ["c"] * n})
    calm = np.tile(pp - pd, (10, 1))
    shaky = calm + rng.normal(0, 0.05, (10, 1))  # replicas that disagree on the level by about 5 points
    a = nps_by_segment(scores, calm, "tracker").to_pylist()
    b = nps_by_segment(scores, shaky, "tracker").to_pylist()
    base_a, base_b = a[0], b[0]
    assert base_a["dimension"] == "base" and base_a["nps"] == base_b["nps"]
    assert (base_b["ci_high"] - base_b["ci_low"]) > 2 * (base_a["ci_high"] - base_a["ci_low"])
    assert {r["level"] for r in a} == {"tracker"}
    assert not any(r["dimension"] == "home_area" for r in a)  # no value: no segment
