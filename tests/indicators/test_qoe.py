"""Tests for opencem.indicators.qoe: reference values, shape, numpy/SQL parity."""

from __future__ import annotations

import itertools
import re

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from opencem.indicators import qoe

RTOL = 1e-9
ATOL = 1e-12  # only matters for values that underflow towards 0

NAN = float("nan")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _table(**cols) -> pa.Table:
    arrays = {}
    for name, values in cols.items():
        if any(isinstance(v, str) for v in values):
            arrays[name] = pa.array(values, type=pa.string())
        else:
            a = np.asarray(values, dtype=float)
            arrays[name] = pa.array(a, mask=np.isnan(a), type=pa.float64())
    return pa.table(arrays)


def _run_sql(expr: str, **cols) -> np.ndarray:
    """Evaluate a SQL expression over columns in DuckDB; NULL -> NaN."""
    t = _table(**cols)
    con = duckdb.connect()
    con.register("t", t)
    out = con.execute(f"SELECT {expr} AS out FROM t").fetchall()
    con.close()
    return np.array([NAN if r[0] is None else float(r[0]) for r in out], dtype=float)


def _assert_parity(np_vals, sql_vals, sql_null_mask=None):
    np_vals = np.asarray(np_vals, dtype=float)
    sql_vals = np.asarray(sql_vals, dtype=float)
    # NaN in numpy <-> NULL in SQL, at exactly the same rows
    np.testing.assert_array_equal(np.isnan(np_vals), np.isnan(sql_vals))
    ok = ~np.isnan(np_vals)
    assert ok.any()
    np.testing.assert_allclose(sql_vals[ok], np_vals[ok], rtol=RTOL, atol=ATOL)


def _grid(*axes):
    rows = list(itertools.product(*axes))
    return [list(col) for col in zip(*rows)]


_ALLOWED_FUNCS = {"CASE", "LN", "LOG10", "EXP", "POWER", "SQRT", "GREATEST", "LEAST", "COALESCE", "CAST"}
_KEYWORDS = {"WHEN", "THEN", "ELSE", "END", "AND", "OR", "NOT", "IS", "NULL", "AS", "DOUBLE"}


def _assert_portable(expr: str):
    """Only the allowed portable functions appear in the SQL text."""
    called = {m.upper() for m in re.findall(r"\b([A-Za-z_][A-Za-z0-9_.]*)\s*\(", expr)}
    bad = called - _ALLOWED_FUNCS - _KEYWORDS
    assert not bad, f"non-portable functions used: {bad}"
    # literals must be DOUBLE (exponent form), never DECIMAL like 0.035
    for lit in re.findall(r"(?<![\w.])\d+\.\d+(?![\d.eE])", expr):
        raise AssertionError(f"decimal literal {lit} would be typed DECIMAL")


# ---------------------------------------------------------------------------
# 1. E-model
# ---------------------------------------------------------------------------


def test_emodel_defaults_r_93_2_and_mos_4_41():
    r = qoe.emodel_r(0.0, 0.0, "G.711")
    assert r == pytest.approx(93.2, abs=0.1)
    assert round(float(r), 1) == 93.2
    assert qoe.r_to_mos(r) == pytest.approx(4.41, abs=0.005)
    # the same through SQL
    (sql_r,) = _run_sql(qoe.emodel_r_sql("d", "l", "G.711", "j"), d=[0.0], l=[0.0], j=[0.0])
    assert sql_r == pytest.approx(float(r), rel=RTOL)
    (sql_mos,) = _run_sql(qoe.r_to_mos_sql(qoe.emodel_r_sql("d", "l", "G.711")), d=[0.0], l=[0.0])
    assert sql_mos == pytest.approx(4.41, abs=0.005)


def test_emodel_wideband_simplification_equals_g711_without_loss():
    for codec in ("AMR-WB", "EVS"):
        assert qoe.emodel_r(0.0, 0.0, codec) == pytest.approx(qoe.emodel_r(0.0, 0.0, "G.711"))


def test_emodel_codec_ie_offsets():
    base = qoe.emodel_r(0.0, 0.0, "G.711")
    assert base - qoe.emodel_r(0.0, 0.0, "AMR-NB") == pytest.approx(5.0)
    assert base - qoe.emodel_r(0.0, 0.0, "G.729A") == pytest.approx(11.0)
    # Ie-eff formula with AMR-NB: Ie=5, Bpl=10, BurstR=1, Ppl=2
    expected = 5.0 + 90.0 * 2.0 / (2.0 + 10.0)
    assert base - qoe.emodel_r(0.0, 2.0, "AMR-NB") == pytest.approx(expected)


def test_emodel_monotonic_in_delay():
    d = np.arange(0.0, 2000.0, 0.5)
    r = qoe.emodel_r(d, 0.0, "AMR-NB")
    # G.107 Idte is slightly negative for T of a few ms (factor 1 - e^-T):
    # R may rise by < 0.1 right after 0 ms, then is non-increasing.
    assert r.max() <= r[0] + 0.1
    after = d >= 1.0
    assert np.all(np.diff(r[after]) <= 1e-12)
    assert r[-1] < 40.0
    # jitter acts as added delay (de-jitter buffer = 2 x jitter)
    assert qoe.emodel_r(100.0, 0.0, "EVS", 50.0) == pytest.approx(qoe.emodel_r(200.0, 0.0, "EVS"))
    assert qoe.emodel_r(100.0, 0.0, "EVS", 50.0, jitter_factor=1.0) == pytest.approx(
        qoe.emodel_r(150.0, 0.0, "EVS")
    )


def test_emodel_delay_knee_at_100ms():
    # Idd only kicks in above 100 ms: the drop from 150 to 250 ms is much larger
    r = qoe.emodel_r(np.array([50.0, 100.0, 150.0, 250.0]), 0.0, "G.711")
    assert r[0] - r[1] < 2.0
    assert r[2] - r[3] > 8.0


def test_emodel_monotonic_in_loss():
    loss = np.linspace(0.0, 100.0, 401)
    for codec in qoe.CODECS:
        r = qoe.emodel_r(50.0, loss, codec)
        assert np.all(np.diff(r) < 0), codec
    # bursty loss hurts more
    assert qoe.emodel_r(0.0, 5.0, "AMR-NB", burst_r=2.0) < qoe.emodel_r(0.0, 5.0, "AMR-NB")


def test_r_to_mos_bounds_and_annex_b():
    r = np.linspace(-50.0, 150.0, 2001)
    mos = qoe.r_to_mos(r)
    assert np.all(mos >= 1.0) and np.all(mos <= 4.5)
    assert np.all(np.diff(mos) >= 0)
    assert qoe.r_to_mos(-1.0) == 1.0
    assert qoe.r_to_mos(101.0) == 4.5
    assert qoe.r_to_mos(0.0) == pytest.approx(1.0)
    assert qoe.r_to_mos(100.0) == pytest.approx(4.5)
    assert qoe.r_to_mos(50.0) == pytest.approx(1 + 0.035 * 50 + 50 * (-10) * 50 * 7e-6)
    # the Annex B cubic dips to ~0.99 for small R; floored at 1
    assert qoe.r_to_mos(3.0) == 1.0
    assert 1 + 0.035 * 3 + 3 * (3 - 60) * 97 * 7e-6 < 1.0
    assert np.isnan(qoe.r_to_mos(None))


def test_emodel_unknown_codec_is_nan():
    out = qoe.emodel_r([0.0, 0.0, 0.0], 0.0, ["EVS", "nope", None])
    assert not np.isnan(out[0]) and np.isnan(out[1]) and np.isnan(out[2])


def test_emodel_sql_parity_grid_with_nulls_and_codec_column():
    delays = [NAN, -5.0, 0.0, 0.4, 3.0, 20.0, 99.9, 100.0, 100.1, 150.0, 177.0, 300.0, 500.0, 1500.0]
    losses = [NAN, -1.0, 0.0, 0.5, 1.0, 3.0, 10.0, 50.0, 100.0, 150.0]
    jitters = [NAN, 0.0, 10.0, 60.0]
    codecs = [None, "unknown", *qoe.CODECS]
    d, l, j, c = _grid(delays, losses, jitters, codecs)
    np_r = qoe.emodel_r(d, l, np.array(c, dtype=object), j)
    sql = qoe.emodel_r_sql("d", "l", "c", "j")
    _assert_portable(sql)
    _assert_parity(np_r, _run_sql(sql, d=d, l=l, j=j, c=c))
    # NULL in any input -> NULL out
    null_in = np.isnan(np.asarray(d)) | np.isnan(np.asarray(l)) | np.isnan(np.asarray(j))
    null_in |= np.array([x not in qoe.CODECS for x in c])
    assert np.all(np.isnan(np_r) == null_in)
    # MOS twin too
    sql_mos = qoe.emodel_mos_sql("d", "l", "c", "j")
    _assert_parity(qoe.emodel_mos(d, l, np.array(c, dtype=object), j), _run_sql(sql_mos, d=d, l=l, j=j, c=c))


@pytest.mark.parametrize("codec", list(qoe.CODECS))
def test_emodel_sql_parity_constant_codec_no_jitter(codec):
    d, l = _grid([NAN, 0.0, 80.0, 120.0, 250.0, 800.0], [NAN, 0.0, 2.0, 20.0])
    sql = qoe.emodel_r_sql("d", "l", codec, burst_r=1.5)
    _assert_portable(sql)
    _assert_parity(qoe.emodel_r(d, l, codec, burst_r=1.5), _run_sql(sql, d=d, l=l))


def test_r_to_mos_sql_parity():
    r = [NAN, -100.0, -0.001, 0.0, 1.0, 3.0, 6.0, 7.0, 30.0, 59.9, 60.0, 80.0, 93.2, 99.99, 100.0, 100.5, 1e6]
    sql = qoe.r_to_mos_sql("r")
    _assert_portable(sql)
    _assert_parity(qoe.r_to_mos(r), _run_sql(sql, r=r))


# ---------------------------------------------------------------------------
# 2. Video
# ---------------------------------------------------------------------------


def test_video_mos_shape():
    best = qoe.video_mos(0.0, 0.0, 0.0, 1080.0)
    assert best == pytest.approx(4.5)
    assert qoe.video_mos(0.0, 0.0, 0.0, 2160.0) == pytest.approx(4.5)  # ceiling
    # monotone: more start-up delay, stalls, stall ratio -> lower; more lines -> higher
    t0 = np.linspace(0.0, 60000.0, 200)
    assert np.all(np.diff(qoe.video_mos(t0, 0.0, 0.0, 1080.0)) < 0)
    ratio = np.linspace(0.0, 1.0, 200)
    assert np.all(np.diff(qoe.video_mos(1000.0, ratio, 1.0, 720.0)) < 0)
    n = np.arange(0.0, 30.0)
    assert np.all(np.diff(qoe.video_mos(1000.0, 0.02, n, 720.0)) < 0)
    lines = np.array([144.0, 240.0, 360.0, 480.0, 720.0, 1080.0])
    assert np.all(np.diff(qoe.video_mos(0.0, 0.0, 0.0, lines)) > 0)
    # resolution anchors
    assert qoe.video_mos(0.0, 0.0, 0.0, 240.0) == pytest.approx(2.5)
    # bounds over a grid
    a, b, c, d = _grid([0.0, 5e3, 1e6], [0.0, 0.3, 5.0], [0.0, 3.0, 100.0], [1.0, 144.0, 4320.0])
    v = qoe.video_mos(a, b, c, d)
    assert np.all(v >= 1.0) and np.all(v <= 4.5)
    # Hossfeld stalling floor: heavy stalling -> factor 0.5/4 of the headroom
    assert qoe.video_mos(0.0, 10.0, 1000.0, 1080.0) == pytest.approx(1.0 + 3.5 * 0.125)


def test_video_mos_sql_parity():
    init = [NAN, -10.0, 0.0, 800.0, 3000.0, 15000.0]
    ratio = [NAN, -0.1, 0.0, 0.01, 0.1, 0.5, 2.0]
    count = [NAN, -1.0, 0.0, 1.0, 3.0, 12.0]
    lines = [NAN, -1.0, 0.0, 144.0, 240.0, 360.0, 720.0, 1080.0, 2160.0]
    a, b, c, d = _grid(init, ratio, count, lines)
    sql = qoe.video_mos_sql("i", "r", "n", "h")
    _assert_portable(sql)
    np_v = qoe.video_mos(a, b, c, d)
    _assert_parity(np_v, _run_sql(sql, i=a, r=b, n=c, h=d))
    null_in = np.isnan(np.c_[a, b, c, d]).any(axis=1)
    assert np.all(np.isnan(np_v) == null_in)
    # non-default reference playback
    sql2 = qoe.video_mos_sql("i", "r", "n", "h", ref_playback_s=120.0)
    _assert_parity(qoe.video_mos(a, b, c, d, ref_playback_s=120.0), _run_sql(sql2, i=a, r=b, n=c, h=d))


# ---------------------------------------------------------------------------
# 3. Web
# ---------------------------------------------------------------------------


def test_web_mos_shape():
    assert qoe.web_mos(500.0) == 5.0
    assert qoe.web_mos(1000.0) == pytest.approx(5.0)
    assert qoe.web_mos(20000.0) == pytest.approx(1.0)
    assert qoe.web_mos(60000.0) == 1.0
    plt = np.linspace(1000.0, 20000.0, 500)
    assert np.all(np.diff(qoe.web_mos(plt)) < 0)
    # logarithmic: each doubling of PLT costs the same MOS
    m = qoe.web_mos(np.array([1500.0, 3000.0, 6000.0, 12000.0]))
    np.testing.assert_allclose(np.diff(m), np.diff(m)[0])
    assert np.isnan(qoe.web_mos(None))
    with pytest.raises(ValueError):
        qoe.web_mos(1.0, min_ms=5.0, max_ms=5.0)


def test_web_mos_sql_parity():
    plt = [NAN, -1.0, 0.0, 200.0, 999.0, 1000.0, 1001.0, 2500.0, 7000.0, 19999.0, 20000.0, 1e7]
    for kw in ({}, {"min_ms": 500.0, "max_ms": 8000.0}):
        sql = qoe.web_mos_sql("p", **kw)
        _assert_portable(sql)
        _assert_parity(qoe.web_mos(plt, **kw), _run_sql(sql, p=plt))


# ---------------------------------------------------------------------------
# 4. Scoring curves
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "good,bad",
    [(100.0, 10.0), (10.0, 100.0), (0.99, 0.9), (0.5, 3.0), (-5.0, 5.0), (4.0, 2.0)],
)
def test_score_logistic_hits_90_and_10(good, bad):
    assert qoe.score_logistic(good, good, bad) == pytest.approx(90.0, rel=1e-12)
    assert qoe.score_logistic(bad, good, bad) == pytest.approx(10.0, rel=1e-12)
    assert qoe.score_logistic((good + bad) / 2, good, bad) == pytest.approx(50.0)
    x = np.linspace(min(good, bad) - 10 * abs(good - bad), max(good, bad) + 10 * abs(good - bad), 501)
    s = qoe.score_logistic(x, good, bad)
    assert np.all((s >= 0.0) & (s <= 100.0))
    direction = np.sign(good - bad)
    assert np.all(direction * np.diff(s) >= 0)
    # SQL twin hits the anchors too
    got = _run_sql(qoe.score_logistic_sql("x", good, bad), x=[good, bad])
    np.testing.assert_allclose(got, [90.0, 10.0], rtol=1e-12)


def test_score_logistic_no_overflow_and_nan():
    s = qoe.score_logistic(np.array([-1e308, 1e308, NAN]), 1.0, 0.0)
    assert s[0] == 0.0 and s[1] == 100.0 and np.isnan(s[2])
    with pytest.raises(ValueError):
        qoe.score_logistic(1.0, 2.0, 2.0)
    with pytest.raises(ValueError):
        qoe.score_logistic_sql("x", 2.0, 2.0)


def test_score_linear():
    assert qoe.score_linear(100.0, 100.0, 10.0) == 100.0
    assert qoe.score_linear(10.0, 100.0, 10.0) == 0.0
    assert qoe.score_linear(55.0, 100.0, 10.0) == pytest.approx(50.0)
    assert qoe.score_linear(1000.0, 100.0, 10.0) == 100.0
    assert qoe.score_linear(-1000.0, 100.0, 10.0) == 0.0
    # decreasing-is-better
    assert qoe.score_linear(1.0, 1.0, 5.0) == 100.0
    assert qoe.score_linear(3.0, 1.0, 5.0) == pytest.approx(50.0)
    assert qoe.score_linear(9.0, 1.0, 5.0) == 0.0
    assert np.isnan(qoe.score_linear(None, 1.0, 5.0))


_XS = [NAN, -1e6, -50.0, -5.0, 0.0, 0.9, 0.95, 0.99, 1.0, 2.0, 3.0, 10.0, 55.0, 100.0, 1e6]


@pytest.mark.parametrize("good,bad", [(100.0, 10.0), (10.0, 100.0), (0.99, 0.9), (1.0, 3.0)])
def test_score_sql_parity_constant_anchors(good, bad):
    for np_fn, sql_fn in (
        (qoe.score_logistic, qoe.score_logistic_sql),
        (qoe.score_linear, qoe.score_linear_sql),
    ):
        sql = sql_fn("x", good, bad)
        _assert_portable(sql)
        _assert_parity(np_fn(_XS, good, bad), _run_sql(sql, x=_XS))


def test_score_sql_parity_column_anchors():
    x, g, b = _grid(_XS, [NAN, 1.0, 100.0], [NAN, 0.5, 10.0])
    for np_fn, sql_fn in (
        (qoe.score_logistic, qoe.score_logistic_sql),
        (qoe.score_linear, qoe.score_linear_sql),
    ):
        sql = sql_fn("x", "g", "b")
        _assert_portable(sql)
        _assert_parity(np_fn(x, g, b), _run_sql(sql, x=x, g=g, b=b))


# ---------------------------------------------------------------------------
# SQL text hygiene
# ---------------------------------------------------------------------------


def test_sql_literals_are_double_and_args_inlined():
    sql = qoe.emodel_r_sql(150, 1.0, "AMR-WB", 20)
    _assert_portable(sql)
    (v,) = _run_sql(sql + " + 0 * x", x=[0.0])
    assert v == pytest.approx(float(qoe.emodel_r(150, 1.0, "AMR-WB", 20)), rel=RTOL)
    assert qoe.r_to_mos_sql(None).count("NULL") >= 1
    (v,) = _run_sql(qoe.r_to_mos_sql(None) + " + 0 * x", x=[0.0])
    assert np.isnan(v)
