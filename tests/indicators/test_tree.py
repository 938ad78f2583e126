"""Tests for opencem.indicators.tree: validation, SQL vs numpy, NULLs, usage weighting, journey, Spark."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
import yaml

from opencem.indicators import qoe
from opencem.indicators.tree import (
    KQI_COLUMNS,
    Tree,
    TreeError,
    cei_service_sql,
    cei_subscriber_sql,
    journey_sql,
    load_tree,
    parse_tree,
    score_kqis_numpy,
)
from opencem.vocabulary import SERVICES

RTOL = 1e-9
ATOL = 1e-9
D0 = dt.date(2024, 3, 31)

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

KQI_SCHEMA = pa.schema(
    [("subscriber_id", pa.string()), ("day", pa.date32()), ("service", pa.string()), ("sessions", pa.int64()),
     ("volume_mb", pa.float64())]
    + [(c, pa.float64()) for c in KQI_COLUMNS]
)
CEI_SERVICE_SCHEMA = pa.schema([("subscriber_id", pa.string()), ("day", pa.date32()), ("service", pa.string()),
                                ("sessions", pa.int64()), ("volume_mb", pa.float64()), ("cei", pa.float64())]
                               + [(c, pa.float64()) for c in load_tree().score_columns()])
CEI_SUBSCRIBER_SCHEMA = pa.schema([("subscriber_id", pa.string()), ("day", pa.date32()),
                                   ("sessions_total", pa.int64()), ("cei", pa.float64())])
CARE_SCHEMA = pa.schema([("contact_id", pa.int64()), ("subscriber_id", pa.string()), ("contact_time", pa.timestamp("us")),
                         ("channel", pa.string()), ("category", pa.string()), ("is_complaint", pa.bool_()),
                         ("resolved", pa.bool_())])


def rows_table(rows: list[dict], schema: pa.Schema, defaults: dict | None = None) -> pa.Table:
    """pyarrow table from row dicts; missing fields are NULL unless given in ``defaults``."""
    defaults = defaults or {}
    cols = {f.name: [r.get(f.name, defaults.get(f.name)) for r in rows] for f in schema}
    return pa.table({f.name: pa.array(cols[f.name], type=f.type) for f in schema}, schema=schema)


def kqi_table(rows: list[dict]) -> pa.Table:
    return rows_table(rows, KQI_SCHEMA, {"day": D0, "sessions": 1, "volume_mb": 1.0})


def run(sql: str, **tables: pa.Table) -> dict[str, list]:
    con = duckdb.connect()
    for name, t in tables.items():
        con.register(name, t)
    res = con.sql(sql).to_arrow_table()
    con.close()
    return res.to_pydict()


def sql_floats(values: list) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def by_key(res: dict[str, list], *keys: str) -> dict[tuple, dict]:
    n = len(res[keys[0]])
    return {tuple(res[k][i] for k in keys): {c: res[c][i] for c in res} for i in range(n)}


@pytest.fixture(scope="module")
def tree() -> Tree:
    return load_tree()


def default_dict() -> dict:
    return load_tree().to_dict()


def random_kqi_table(n: int = 600, seed: int = 3) -> pa.Table:
    """Random KQI rows over every service (plus one the tree does not know), ~20 % NULLs per column."""
    rng = np.random.default_rng(seed)
    scale = {
        "success_rate": (0.8, 1.0), "throughput_kbps_mean": (100, 50_000), "rtt_ms_mean": (10, 600),
        "jitter_ms_mean": (0, 80), "page_load_ms_mean": (300, 20_000), "slow_page_share": (0, 1),
        "initial_buffer_ms_mean": (200, 15_000), "stall_ratio": (0, 0.2), "stall_session_share": (0, 1),
        "video_bitrate_kbps_mean": (200, 6000), "video_resolution_mean": (240, 1080), "video_mos_mean": (1, 4.5),
        "call_setup_ms_mean": (800, 9000), "call_drop_rate": (0, 0.1), "voice_mos_mean": (1, 4.5),
        "voice_delay_ms_mean": (50, 400), "packet_loss_pct_mean": (0, 10),
    }
    svc = rng.choice(list(SERVICES) + ["messaging"], n)
    cols = {
        "subscriber_id": pa.array([f"s{i:05d}" for i in range(n)]),
        "day": pa.array([D0 - dt.timedelta(days=int(d)) for d in rng.integers(0, 5, n)], type=pa.date32()),
        "service": pa.array(svc),
        "sessions": pa.array(rng.integers(1, 50, n), type=pa.int64()),
        "volume_mb": pa.array(rng.uniform(0, 500, n)),
    }
    for c in KQI_COLUMNS:
        lo, hi = scale[c]
        x = rng.uniform(lo, hi, n)
        cols[c] = pa.array(x, mask=rng.random(n) < 0.2, type=pa.float64())
    # a few rows where every KQI is NULL
    t = pa.table(cols, schema=KQI_SCHEMA)
    nulls = {c: pa.array([None] * 5, type=pa.float64()) for c in KQI_COLUMNS}
    extra = pa.table({
        "subscriber_id": pa.array([f"z{i}" for i in range(5)]), "day": pa.array([D0] * 5, type=pa.date32()),
        "service": pa.array(list(SERVICES[:5])), "sessions": pa.array([3] * 5, type=pa.int64()),
        "volume_mb": pa.array([1.0] * 5), **nulls,
    }, schema=KQI_SCHEMA)
    return pa.concat_tables([t, extra])


def all_sql(t: Tree) -> list[str]:
    return [cei_service_sql(t), cei_subscriber_sql(t), journey_sql(t)]


# ---------------------------------------------------------------------------
# the default tree
# ---------------------------------------------------------------------------


def test_default_tree_loads(tree: Tree):
    assert tree.version == 1
    assert list(tree.services) == list(SERVICES)
    for name, svc in tree.services.items():
        assert svc.importance > 0
        assert sum(k.weight for k in svc.kqis) == pytest.approx(1.0), name
        for k in svc.kqis:
            assert k.column in KQI_COLUMNS
            assert k.source.strip()
    assert tree.overall.usage == "sessions"
    assert tree.journey.window_days == 30
    st = tree.journey.stages
    assert st.use.weight + st.get_help.weight + st.choose_interact.weight == pytest.approx(1.0)
    assert st.choose_interact.categories == ["billing", "price"]
    # voice MOS anchors follow G.107 Annex B: MOS at R = 80 and R = 60
    mos = tree.services["voice"].kqis[0]
    assert (mos.column, mos.good, mos.bad) == ("voice_mos_mean", 4.0, 3.1)
    assert float(qoe.r_to_mos(80.0)) == pytest.approx(4.0, abs=0.05)
    assert float(qoe.r_to_mos(60.0)) == pytest.approx(3.1, abs=1e-9)


def test_default_tree_file_and_path_agree(tree: Tree):
    path = Path(qoe.__file__).with_name("default_tree.yaml")
    assert load_tree(path) == tree
    assert load_tree(str(path)) == tree


def test_round_trip_yaml(tree: Tree, tmp_path: Path):
    text = tree.to_yaml(tmp_path / "t.yaml")
    assert parse_tree(text) == tree
    assert load_tree(tmp_path / "t.yaml") == tree
    # every weight is a plain YAML number
    d = yaml.safe_load(text)
    assert all(isinstance(k["weight"], float) for s in d["services"].values() for k in s["kqis"])


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_tree("nope.yaml")


# ---------------------------------------------------------------------------
# validation errors: one line naming file and YAML path
# ---------------------------------------------------------------------------


def _kqi(d, svc, i):
    return d["services"][svc]["kqis"][i]


INVALID = {
    "bad curve": (lambda d: _kqi(d, "video", 1).update(curve="sigmoid"),
                  "services.video.kqis[1].curve: must be one of 'logistic' or 'linear' (got 'sigmoid')"),
    "good == bad": (lambda d: _kqi(d, "video", 1).update(good=0.3, bad=0.3),
                    "services.video.kqis[1].good: must differ from bad"),
    "negative weight": (lambda d: _kqi(d, "web", 0).update(weight=-0.5),
                        "services.web.kqis[0].weight: must be >= 0 (got -0.5)"),
    "negative importance": (lambda d: d["services"]["voice"].update(importance=-1),
                            "services.voice.importance: must be >= 0 (got -1)"),
    "negative penalty": (lambda d: d["journey"]["stages"]["get_help"].update(complaint_penalty=-5),
                         "journey.stages.get_help.complaint_penalty: must be >= 0 (got -5)"),
    "unknown column": (lambda d: _kqi(d, "video", 0).update(column="stall_ratio_mean"),
                       "services.video.kqis[0].column: unknown KQI column 'stall_ratio_mean' (did you mean 'stall_ratio'? see tree.KQI_COLUMNS)"),
    "unknown column far": (lambda d: _kqi(d, "web", 2).update(column="nps"),
                           "services.web.kqis[2].column: unknown KQI column 'nps' (allowed: " + ", ".join(KQI_COLUMNS) + ")"),
    "usage is not a KQI": (lambda d: _kqi(d, "web", 2).update(column="sessions"),
                           "services.web.kqis[2].column: unknown KQI column 'sessions' (allowed: " + ", ".join(KQI_COLUMNS) + ")"),
    "unknown key": (lambda d: _kqi(d, "video", 1).update(colour="red"),
                    "services.video.kqis[1].colour: unknown key (did you mean 'column'? allowed: name, column, curve, good, bad, weight, source)"),
    "unknown top key": (lambda d: d.update(extras=1),
                        "extras: unknown key (allowed: version, services, overall, journey)"),
    "unknown service": (lambda d: d["services"].update(gamng=d["services"].pop("gaming")),
                        "services.gamng: unknown service (did you mean 'gaming'? allowed: web, video, voice, gaming, social, file_transfer)"),
    "missing field": (lambda d: _kqi(d, "video", 1).pop("bad"),
                      "services.video.kqis[1].bad: missing required field"),
    "missing source": (lambda d: _kqi(d, "voice", 3).pop("source"),
                       "services.voice.kqis[3].source: missing required field"),
    "missing journey": (lambda d: d.pop("journey"), "journey: missing required field"),
    "string number": (lambda d: _kqi(d, "web", 0).update(good="2000"),
                      "services.web.kqis[0].good: must be a finite number (got '2000')"),
    "all weights zero": (lambda d: [k.update(weight=0) for k in d["services"]["web"]["kqis"]],
                         "services.web.kqis: at least one KQI weight must be > 0"),
    "all importances zero": (lambda d: [s.update(importance=0) for s in d["services"].values()],
                             "services: at least one service importance must be > 0"),
    "all stage weights zero": (lambda d: [s.update(weight=0) for s in d["journey"]["stages"].values()],
                               "journey.stages: at least one stage weight must be > 0"),
    "duplicate kqi": (lambda d: _kqi(d, "video", 1).update(name="stall"),
                      "services.video.kqis[1].name: duplicate KQI name 'stall' in this service"),
    "bad kqi name": (lambda d: _kqi(d, "video", 1).update(name="Stall Share"),
                     "services.video.kqis[1].name: must be a lower-case identifier [a-z][a-z0-9_]* (got 'Stall Share')"),
    "fraction out of range": (lambda d: _kqi(d, "voice", 2).update(good=99),
                              "services.voice.kqis[2].good: success_rate is a fraction 0..1 (got 99.0)"),
    "empty kqis": (lambda d: d["services"]["voice"].update(kqis=[]), "services.voice.kqis: must not be empty"),
    "empty category": (lambda d: d["journey"]["stages"]["choose_interact"]["categories"].append(""),
                       "journey.stages.choose_interact.categories[2]: must be a non-empty string (got '')"),
    "bad window": (lambda d: d["journey"].update(window_days=0), "journey.window_days: must be >= 1 (got 0)"),
    "bad version": (lambda d: d.update(version=2), "version: must be 1 (got 2)"),
    "bad usage": (lambda d: d["overall"].update(usage="minutes"),
                  "overall.usage: must be one of 'sessions' or 'volume_mb' (got 'minutes')"),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_tree_one_line_error(case: str, tmp_path: Path):
    mutate, expected = INVALID[case]
    d = default_dict()
    mutate(d)
    path = tmp_path / "tree.yaml"
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    with pytest.raises(TreeError) as ei:
        load_tree(path)
    msg = str(ei.value)
    assert "\n" not in msg
    assert msg == f"{path}: {expected}"
    assert isinstance(ei.value, ValueError)  # the CLI turns ValueErrors into one red line, exit 2


def test_several_errors_are_counted():
    d = default_dict()
    _kqi(d, "web", 0)["weight"] = -1
    _kqi(d, "web", 1)["weight"] = -2
    with pytest.raises(TreeError, match=r"^tree.yaml: services.web.kqis\[0\].weight: must be >= 0 \(got -1\) \(and 1 more error\)$"):
        parse_tree(yaml.safe_dump(d))


def test_invalid_yaml_syntax():
    with pytest.raises(TreeError, match=r"^x.yaml: invalid YAML line \d+ column \d+: "):
        parse_tree("version: 1\nservices: [a\n", "x.yaml")
    with pytest.raises(TreeError, match=r"^x.yaml: must be a YAML mapping"):
        parse_tree("- 1\n", "x.yaml")
    # PyYAML would silently keep the last of two equal keys: refused
    text = load_tree().to_yaml().replace("services:\n", "services:\n  web:\n    importance: 1.0\n", 1)
    line = [i + 1 for i, x in enumerate(text.splitlines()) if x == "  web:"][1]  # the second one
    with pytest.raises(TreeError, match=rf"^x.yaml: invalid YAML line {line} column 3: duplicate key 'web'$"):
        parse_tree(text, "x.yaml")


# ---------------------------------------------------------------------------
# cei_service_sql vs the numpy reference
# ---------------------------------------------------------------------------


def test_service_sql_matches_numpy(tree: Tree):
    t = random_kqi_table()
    res = run(cei_service_sql(tree) + " ORDER BY subscriber_id", kqi_pspu_day=t)
    t = t.sort_by("subscriber_id")
    ref = score_kqis_numpy(tree, t)
    assert res["subscriber_id"] == t.column("subscriber_id").to_pylist()
    assert res["sessions"] == t.column("sessions").to_pylist()
    for col, expected in ref.items():
        got = sql_floats(res[col])
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=col)
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL, err_msg=col)
    cei = ref["cei"][~np.isnan(ref["cei"])]
    assert len(cei) > 300 and cei.min() >= 0 and cei.max() <= 100
    # the service the tree does not know and the all-NULL rows give NULL
    svc = np.array(t.column("service").to_pylist())
    assert np.isnan(ref["cei"][svc == "messaging"]).all()
    assert np.isnan(ref["cei"][np.char.startswith(np.array(t.column("subscriber_id").to_pylist()), "z")]).all()


def test_service_sql_columns(tree: Tree):
    res = run(cei_service_sql(tree), kqi_pspu_day=kqi_table([{"subscriber_id": "a", "service": "web"}]))
    assert list(res) == ["subscriber_id", "day", "service", "sessions", "volume_mb"] + tree.score_columns() + ["cei"]
    assert len(tree.score_columns()) == len(set(tree.score_columns()))


def test_null_kqi_does_not_drag_cei_down(tree: Tree):
    web = {k.name: k for k in tree.services["web"].kqis}
    rows = [
        # page load NULL: CEI is the mean of the other two scores, renormalised
        {"subscriber_id": "a", "service": "web", "page_load_ms_mean": None, "slow_page_share": 0.0, "success_rate": 1.0},
        # the same with a perfect page load
        {"subscriber_id": "b", "service": "web", "page_load_ms_mean": 500.0, "slow_page_share": 0.0, "success_rate": 1.0},
        # every KQI NULL -> NULL
        {"subscriber_id": "c", "service": "web"},
        # a column of another service is set but does not score web
        {"subscriber_id": "d", "service": "web", "voice_mos_mean": 1.0, "success_rate": 0.95},
        # a service the tree does not know
        {"subscriber_id": "e", "service": "messaging", "success_rate": 1.0},
    ]
    res = by_key(run(cei_service_sql(tree), kqi_pspu_day=kqi_table(rows)), "subscriber_id")
    s_success = float(qoe.score_logistic(1.0, web["success"].good, web["success"].bad))
    s_slow = 100.0  # linear, at good
    w_slow, w_success = web["slow_pages"].weight, web["success"].weight
    expected_a = (w_slow * s_slow + w_success * s_success) / (w_slow + w_success)
    assert res[("a",)]["score_page_load"] is None
    assert res[("a",)]["cei"] == pytest.approx(expected_a, rel=RTOL)
    # a NULL KQI is left out, not scored 0: a is not worse than b, whose page load scores < 100
    assert res[("b",)]["score_page_load"] < 100
    assert res[("a",)]["cei"] >= res[("b",)]["cei"]
    assert res[("c",)]["cei"] is None
    assert all(res[("c",)][c] is None for c in tree.score_columns())
    assert res[("d",)]["score_mos"] is None
    assert res[("d",)]["cei"] == pytest.approx(float(qoe.score_logistic(0.95, 0.99, 0.90)), rel=RTOL)
    assert res[("e",)]["cei"] is None and res[("e",)]["score_success"] is None


def test_curve_anchors_in_sql(tree: Tree):
    """good scores 90 (logistic) / 100 (linear), bad 10 / 0."""
    video = {k.name: k for k in tree.services["video"].kqis}
    st, ss = video["stall"], video["stalled_sessions"]
    rows = [
        {"subscriber_id": "g", "service": "video", "stall_ratio": st.good, "stall_session_share": ss.good},
        {"subscriber_id": "b", "service": "video", "stall_ratio": st.bad, "stall_session_share": ss.bad},
        {"subscriber_id": "x", "service": "video", "stall_ratio": 1.0, "stall_session_share": 0.9},
    ]
    res = by_key(run(cei_service_sql(tree), kqi_pspu_day=kqi_table(rows)), "subscriber_id")
    assert res[("g",)]["score_stall"] == pytest.approx(90.0, rel=RTOL)
    assert res[("b",)]["score_stall"] == pytest.approx(10.0, rel=RTOL)
    assert res[("g",)]["score_stalled_sessions"] == pytest.approx(100.0, rel=RTOL)
    assert res[("b",)]["score_stalled_sessions"] == pytest.approx(0.0, abs=1e-12)
    assert res[("x",)]["score_stalled_sessions"] == 0.0  # clipped
    w = st.weight + ss.weight
    assert res[("g",)]["cei"] == pytest.approx((90 * st.weight + 100 * ss.weight) / w, rel=RTOL)


# ---------------------------------------------------------------------------
# cei_subscriber_sql: usage weighting
# ---------------------------------------------------------------------------


def cei_service_rows(rows: list[dict]) -> pa.Table:
    return rows_table(rows, CEI_SERVICE_SCHEMA, {"day": D0, "volume_mb": 1.0})


def test_usage_weighting_by_hand(tree: Tree):
    imp = {s: n.importance for s, n in tree.services.items()}
    assert imp["web"] != imp["video"]  # so the hand check below tests the importance
    rows = [
        {"subscriber_id": "a", "service": "web", "sessions": 10, "cei": 80.0, "score_page_load": 70.0},
        {"subscriber_id": "a", "service": "video", "sessions": 2, "cei": 50.0, "score_stall": 40.0},
        # b: video CEI NULL -> only web counts, but its sessions are counted
        {"subscriber_id": "b", "service": "web", "sessions": 4, "cei": 70.0},
        {"subscriber_id": "b", "service": "video", "sessions": 3, "cei": None},
        # c: nothing scored
        {"subscriber_id": "c", "service": "voice", "sessions": 1, "cei": None},
        # a on another day
        {"subscriber_id": "a", "day": D0 - dt.timedelta(days=1), "service": "voice", "sessions": 5, "cei": 40.0},
    ]
    res = by_key(run(cei_subscriber_sql(tree), cei_service_day=cei_service_rows(rows)), "subscriber_id", "day")
    a = res[("a", D0)]
    expected = (10 * imp["web"] * 80 + 2 * imp["video"] * 50) / (10 * imp["web"] + 2 * imp["video"])
    assert expected == pytest.approx((800 + 150) / 13)  # default importances web 1.0, video 1.5
    assert a["cei"] == pytest.approx(expected, rel=RTOL)
    assert (a["cei_web"], a["cei_video"], a["cei_voice"], a["cei_gaming"]) == (80.0, 50.0, None, None)
    assert a["sessions_total"] == 12
    # each service's KQI scores, one column per service and KQI
    assert (a["score_web_page_load"], a["score_video_stall"], res[("b", D0)]["score_web_page_load"]) == (70.0, 40.0, None)
    assert "score_web_stall" not in a  # web has no stall KQI
    assert res[("b", D0)]["cei"] == pytest.approx(70.0, rel=RTOL)
    assert res[("b", D0)]["sessions_total"] == 7
    assert res[("b", D0)]["cei_video"] is None
    assert res[("c", D0)]["cei"] is None
    assert res[("a", D0 - dt.timedelta(days=1))]["cei"] == pytest.approx(40.0, rel=RTOL)
    assert list(next(iter(res.values()))) == (["subscriber_id", "day", "sessions_total", "cei"] + [f"cei_{s}" for s in SERVICES]
                                              + [f"score_{s}_{k.name}" for s, n in tree.services.items() for k in n.kqis])


def test_usage_by_volume_and_missing_service(tree: Tree):
    d = tree.to_dict()
    d["overall"]["usage"] = "volume_mb"
    del d["services"]["gaming"]
    t2 = parse_tree(yaml.safe_dump(d))
    rows = [
        {"subscriber_id": "a", "service": "web", "sessions": 10, "volume_mb": 1.0, "cei": 80.0},
        {"subscriber_id": "a", "service": "video", "sessions": 2, "volume_mb": 100.0, "cei": 50.0},
        {"subscriber_id": "a", "service": "gaming", "sessions": 7, "volume_mb": 5.0, "cei": 0.0},
    ]
    res = run(cei_subscriber_sql(t2), cei_service_day=cei_service_rows(rows))
    assert res["cei"][0] == pytest.approx((1.0 * 80 + 150.0 * 50) / 151.0, rel=RTOL)
    assert res["sessions_total"][0] == 19
    assert "cei_gaming" not in res


# ---------------------------------------------------------------------------
# journey_sql
# ---------------------------------------------------------------------------


def care_rows(rows: list[dict]) -> pa.Table:
    rows = [dict(r, contact_id=i) for i, r in enumerate(rows)]
    return rows_table(rows, CARE_SCHEMA, {"channel": "app", "is_complaint": False, "resolved": True})


def at(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour))


def test_journey_window_and_penalties(tree: Tree):
    gh, ci = tree.journey.stages.get_help, tree.journey.stages.choose_interact
    first = D0 - dt.timedelta(days=tree.journey.window_days - 1)  # first day inside the window
    subs = rows_table([{"subscriber_id": s, "cei": 70.0} for s in "abcdef"] + [{"subscriber_id": "g", "cei": None}],
                      CEI_SUBSCRIBER_SCHEMA, {"day": D0, "sessions_total": 5})
    care = care_rows([
        # a: unresolved coverage complaint on the first day of the window (late evening)
        {"subscriber_id": "a", "contact_time": at(first, 23), "category": "coverage", "is_complaint": True, "resolved": False},
        # b: the same complaint one day earlier: outside the window
        {"subscriber_id": "b", "contact_time": at(first - dt.timedelta(days=1), 23), "category": "coverage",
         "is_complaint": True, "resolved": False},
        # c: a resolved billing enquiry today -> both care stages
        {"subscriber_id": "c", "contact_time": at(D0, 0), "category": "billing"},
        # d: a contact tomorrow does not count
        {"subscriber_id": "d", "contact_time": at(D0 + dt.timedelta(days=1), 1), "category": "price", "is_complaint": True},
        # e: many complaints: get_help floors at 0
        *[{"subscriber_id": "e", "contact_time": at(D0 - dt.timedelta(days=i)), "category": "data_speed",
           "is_complaint": True, "resolved": False} for i in range(5)],
        # g: no network CEI, a price complaint
        {"subscriber_id": "g", "contact_time": at(D0), "category": "price", "is_complaint": True},
    ])
    res = by_key(run(journey_sql(tree), cei_subscriber_day=subs, care_contacts=care), "subscriber_id")
    assert len(res) == 7
    w_use, w_gh, w_ci = (getattr(tree.journey.stages, s).weight for s in ("use", "get_help", "choose_interact"))

    def journey(use, h, i):
        if use is None:
            return (w_gh * h + w_ci * i) / (w_gh + w_ci)
        return (w_use * use + w_gh * h + w_ci * i) / (w_use + w_gh + w_ci)

    a_help = 100 - gh.contact_penalty - gh.complaint_penalty - gh.unresolved_penalty
    assert res[("a",)]["cei_get_help"] == pytest.approx(a_help)
    assert res[("a",)]["cei_choose_interact"] == 100.0
    assert res[("a",)]["care_contacts_window"] == 1 and res[("a",)]["care_complaints_window"] == 1
    assert res[("a",)]["cei_journey"] == pytest.approx(journey(70.0, a_help, 100.0), rel=RTOL)
    for s in "bdf":  # outside the window, in the future, no contact
        r = res[(s,)]
        assert (r["cei_get_help"], r["cei_choose_interact"], r["care_contacts_window"]) == (100.0, 100.0, 0)
        assert r["cei_use"] == 70.0
        assert r["cei_journey"] == pytest.approx(journey(70.0, 100.0, 100.0), rel=RTOL)
    assert res[("c",)]["cei_get_help"] == pytest.approx(100 - gh.contact_penalty)
    assert res[("c",)]["cei_choose_interact"] == pytest.approx(100 - ci.contact_penalty)
    assert res[("e",)]["cei_get_help"] == 0.0
    assert res[("e",)]["care_complaints_window"] == 5
    g = res[("g",)]
    assert g["cei_use"] is None
    assert g["cei_choose_interact"] == pytest.approx(100 - ci.contact_penalty - ci.complaint_penalty)
    assert g["cei_journey"] == pytest.approx(journey(None, g["cei_get_help"], g["cei_choose_interact"]), rel=RTOL)


def test_journey_window_length_from_yaml(tree: Tree):
    d = tree.to_dict()
    d["journey"]["window_days"] = 1  # today only
    t1 = parse_tree(yaml.safe_dump(d))
    subs = rows_table([{"subscriber_id": "a", "cei": 50.0}], CEI_SUBSCRIBER_SCHEMA, {"day": D0, "sessions_total": 1})
    care = care_rows([{"subscriber_id": "a", "contact_time": at(D0 - dt.timedelta(days=1), 23), "category": "other",
                       "is_complaint": True}])
    assert run(journey_sql(t1), cei_subscriber_day=subs, care_contacts=care)["cei_get_help"] == [100.0]
    res = run(journey_sql(tree), cei_subscriber_day=subs, care_contacts=care)["cei_get_help"]
    assert res == [100.0 - tree.journey.stages.get_help.contact_penalty - tree.journey.stages.get_help.complaint_penalty]


# ---------------------------------------------------------------------------
# modified trees
# ---------------------------------------------------------------------------


def test_modified_yaml_weights_change_result(tree: Tree, tmp_path: Path):
    rows = [{"subscriber_id": "a", "service": "web", "page_load_ms_mean": 4000.0, "slow_page_share": 0.1,
             "success_rate": 0.97}]
    base = run(cei_service_sql(tree), kqi_pspu_day=kqi_table(rows))
    # only the page load counts: edit the YAML text
    d = tree.to_dict()
    for k in d["services"]["web"]["kqis"]:
        k["weight"] = 1.0 if k["name"] == "page_load" else 0.0
    path = tmp_path / "only_plt.yaml"
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    only = run(cei_service_sql(load_tree(path)), kqi_pspu_day=kqi_table(rows))
    assert only["cei"][0] == pytest.approx(only["score_page_load"][0], rel=RTOL)
    assert only["score_page_load"] == base["score_page_load"]
    assert only["cei"][0] != pytest.approx(base["cei"][0])
    # the same through with_weights; the original tree is unchanged
    t2 = tree.with_weights(kqi={"web": {"page_load": 1.0, "slow_pages": 0, "success": 0}})
    assert t2 == load_tree(path)
    assert tree.services["web"].kqis[0].weight == 0.4
    # doubling every weight of a service changes nothing (weights are renormalised)
    t3 = tree.with_weights(kqi={"web": {k.name: 2 * k.weight for k in tree.services["web"].kqis}})
    assert run(cei_service_sql(t3), kqi_pspu_day=kqi_table(rows))["cei"][0] == pytest.approx(base["cei"][0], rel=RTOL)
    # a looser page-load anchor raises the score
    d["services"]["web"]["kqis"][0]["bad"] = 20000
    looser = run(cei_service_sql(parse_tree(yaml.safe_dump(d))), kqi_pspu_day=kqi_table(rows))
    assert looser["score_page_load"][0] > base["score_page_load"][0]


def test_with_weights_importance_and_stages(tree: Tree):
    rows = [
        {"subscriber_id": "a", "service": "web", "sessions": 10, "cei": 80.0},
        {"subscriber_id": "a", "service": "video", "sessions": 2, "cei": 50.0},
    ]
    t2 = tree.with_weights(importance={"video": np.float64(5.0)}, stages={"use": 1.0, "get_help": 0, "choose_interact": 0})
    assert type(t2.services["video"].importance) is float
    res = run(cei_subscriber_sql(t2), cei_service_day=cei_service_rows(rows))
    assert res["cei"][0] == pytest.approx((10 * 80 + 10 * 50) / 20, rel=RTOL)
    subs = rows_table([{"subscriber_id": "a", "cei": 65.0}], CEI_SUBSCRIBER_SCHEMA, {"day": D0, "sessions_total": 1})
    care = care_rows([{"subscriber_id": "a", "contact_time": at(D0), "category": "billing", "is_complaint": True}])
    j = run(journey_sql(t2), cei_subscriber_day=subs, care_contacts=care)
    assert j["cei_journey"] == [65.0] and j["cei_get_help"][0] < 100
    w = t2.weights()
    assert w["importance"]["video"] == 5.0 and w["stages"]["use"] == 1.0
    assert tree.with_weights(**tree.weights()) == tree


def test_with_weights_errors(tree: Tree):
    with pytest.raises(TreeError, match=r"^with_weights: kqi.web.plt: no such KQI in service web"):
        tree.with_weights(kqi={"web": {"plt": 1.0}})
    with pytest.raises(TreeError, match=r"^with_weights: importance.radio: no such service"):
        tree.with_weights(importance={"radio": 1.0})
    with pytest.raises(TreeError, match=r"^with_weights: stages.pay: no such stage"):
        tree.with_weights(stages={"pay": 1.0})
    with pytest.raises(TreeError, match=r"^with_weights: services.web.kqis\[1\].weight: must be >= 0 \(got -1\)$"):
        tree.with_weights(kqi={"web": {"slow_pages": -1}})
    with pytest.raises(TreeError, match=r"^with_weights: services.web.kqis: at least one KQI weight must be > 0$"):
        tree.with_weights(kqi={"web": {"page_load": 0, "slow_pages": 0, "success": 0}})
    t2 = tree.with_weights(kqi={"voice": {"mos": 0.5}}, source="calibrated on NPS 2024-03")
    assert t2.services["voice"].kqis[0].source == "calibrated on NPS 2024-03"
    assert t2.services["voice"].kqis[1].source == tree.services["voice"].kqis[1].source
    assert t2.services["voice"].source == tree.services["voice"].source
    t3 = tree.with_weights(importance={"voice": 2.0}, stages={"use": 0.5}, source="calibrated")
    assert t3.services["voice"].source == "calibrated" and t3.journey.stages.use.source == "calibrated"
    assert t3.services["web"].source == tree.services["web"].source


# ---------------------------------------------------------------------------
# portability
# ---------------------------------------------------------------------------


def _trees() -> list[Tree]:
    t = load_tree()
    d = t.to_dict()
    d["overall"]["usage"] = "volume_mb"
    d["journey"]["window_days"] = 1
    del d["services"]["social"]
    return [t, parse_tree(yaml.safe_dump(d)), t.with_weights(kqi={"web": {"slow_pages": 0}})]


@pytest.mark.parametrize("i", range(3))
def test_sql_transpiles_to_spark(i: int):
    for sql in all_sql(_trees()[i]):
        out = sqlglot.transpile(sql, read="duckdb", write="spark", unsupported_level=sqlglot.ErrorLevel.RAISE)
        assert len(out) == 1
        upper = sql.upper()
        for banned in ("GREATEST", "LEAST", "FILTER", "QUALIFY", "::", "DATE_DIFF", "LIST"):
            assert banned not in upper, banned
    spark_journey = sqlglot.transpile(journey_sql(_trees()[i]), read="duckdb", write="spark")[0]
    assert "INTERVAL '" in spark_journey


def test_full_chain_in_duckdb(tree: Tree):
    """kqi_pspu_day -> cei_service_day -> cei_subscriber_day -> journey, as the measure stage chains them."""
    con = duckdb.connect()
    con.register("kqi_pspu_day", random_kqi_table(200, seed=9))
    con.register("care_contacts", care_rows([
        {"subscriber_id": "s00001", "contact_time": at(D0), "category": "coverage", "is_complaint": True}]))
    con.execute(f"CREATE TABLE cei_service_day AS {cei_service_sql(tree)}")
    con.execute(f"CREATE TABLE cei_subscriber_day AS {cei_subscriber_sql(tree)}")
    con.execute(f"CREATE TABLE cei_journey_day AS {journey_sql(tree)}")
    n_sub = con.execute("SELECT COUNT(*) FROM cei_subscriber_day").fetchone()[0]
    n_j, lo, hi = con.execute("SELECT COUNT(*), MIN(cei_journey), MAX(cei_journey) FROM cei_journey_day").fetchone()
    assert n_j == n_sub > 0 and 0 <= lo <= hi <= 100
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE cei_journey_day)").fetchall())
    assert types["day"] == "DATE" and types["cei_journey"] == "DOUBLE"
    con.close()


@pytest.mark.spark
def test_same_results_on_spark(tree: Tree, tmp_path: Path):
    """The transpiled SQL gives the DuckDB results on Spark."""
    from pyspark.sql import SparkSession

    kqi = random_kqi_table(150, seed=5)
    subs_days = sorted(set(zip(kqi.column("subscriber_id").to_pylist(), kqi.column("day").to_pylist())))
    care = care_rows([
        {"subscriber_id": s, "contact_time": at(d - dt.timedelta(days=k), 20), "category": c, "is_complaint": k % 2 == 0,
         "resolved": k % 3 != 0}
        for j, (s, d) in enumerate(subs_days[:40]) for k, c in [(j % 35, "billing"), ((j * 7) % 40, "coverage")]
    ])
    pq.write_table(kqi, tmp_path / "kqi.parquet")
    pq.write_table(care, tmp_path / "care.parquet")

    con = duckdb.connect()
    con.register("kqi_pspu_day", kqi)
    con.register("care_contacts", care)
    steps = [("cei_service_day", cei_service_sql(tree)), ("cei_subscriber_day", cei_subscriber_sql(tree)),
             ("cei_journey_day", journey_sql(tree))]
    duck = {}
    for name, sql in steps:
        con.execute(f"CREATE TABLE {name} AS {sql}")
        duck[name] = con.sql(f"SELECT * FROM {name}").to_arrow_table().to_pylist()
    con.close()

    spark = (SparkSession.builder.master("local[1]").appName("opencem-tree-test")
             .config("spark.ui.enabled", "false").config("spark.sql.session.timeZone", "UTC")
             .config("spark.sql.shuffle.partitions", "2").getOrCreate())
    try:
        spark.read.parquet(str(tmp_path / "kqi.parquet")).createOrReplaceTempView("kqi_pspu_day")
        spark.read.parquet(str(tmp_path / "care.parquet")).createOrReplaceTempView("care_contacts")
        for name, sql in steps:
            spark_sql = sqlglot.transpile(sql, read="duckdb", write="spark")[0]
            df = spark.sql(spark_sql)
            df.createOrReplaceTempView(name)
            df.cache()
            got = [r.asDict() for r in df.collect()]
            exp = duck[name]
            assert len(got) == len(exp), name
            key = ("subscriber_id", "day", "service") if name == "cei_service_day" else ("subscriber_id", "day")
            g = {tuple(r[k] for k in key): r for r in got}
            for r in exp:
                s = g[tuple(r[k] for k in key)]
                assert set(s) == set(r), name
                for c, v in r.items():
                    if isinstance(v, float):
                        assert s[c] == pytest.approx(v, rel=RTOL, abs=ATOL), (name, c)
                    else:
                        assert s[c] == v, (name, c)
        assert any(r["cei_get_help"] < 100 for r in duck["cei_journey_day"])
    finally:
        spark.stop()
