"""The digital twin end to end on the suite's shared synthetic operator, with faults of every cause: state,
episodes, causes, GeoJSON, CLI, what-if, and accuracy against the operator's truth."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import h3
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from opencem.cli import app
from opencem.engine import compare_tables
from opencem.geo import grid_of
from opencem.nps.model import NpsModel
from opencem.twin.accuracy import evaluate, load_faults
from opencem.twin.cause import TRANSPORT_LOG_RTT, cause_scores
from opencem.twin.episodes import DetectConfig, cluster, device_runs
from opencem.engine.duckdb_engine import DuckDBEngine
from opencem.twin.run import _cell_events, _clusters, diagnose, episodes_geojson, load_episodes, state_geojson
from opencem.twin.state import CENTROID_DAYS
from opencem.twin.whatif import NUMERIC, WhatIfEngine, _counterfactual, whatif
from opencem.vocabulary import CAUSES
from opencem.workspace import Workspace

@pytest.fixture(scope="module")
def faults(shared):
    """The faults the generator injected, as the accuracy check reads them."""
    with Workspace(shared.ws).session(tables=("cells",)) as engine:
        return load_faults(shared.data / "truth", engine.table_arrow("cells"))


def test_grid_of_places_positions_and_keeps_missing_ones_empty():
    got = grid_of(np.array([45.0, np.nan, 45.0001]), np.array([4.0, 4.0, 4.0]), 9)
    assert got[0] == h3.latlng_to_cell(45.0, 4.0, 9) and got[1] is None and got[2] == got[0]


def test_cluster_merges_neighbours_and_close_hours_only():
    a = h3.latlng_to_cell(45.0, 4.0, 9)
    n = sorted(set(h3.grid_disk(a, 1)) - {a})[0]
    far = h3.latlng_to_cell(45.1, 4.1, 9)
    hours = np.array(["2026-10-01T10", "2026-10-01T11", "2026-10-01T10", "2026-10-01T20"], dtype="datetime64[h]")
    lab = cluster(np.array([a, n, far, a], dtype=object), hours, max_gap_hours=2)
    assert lab[0] == lab[1] and len({lab[0], lab[2], lab[3]}) == 3


def test_failures_an_episode_shares_with_the_grids_around_it_do_not_name_it_core_dns():
    """A backhaul fault during a DNS failure over the same part of the city: its failures are the DNS
    failure's, so its own signal (RTT on one link) names it; alone, or with failures of its own, or with no
    signal of its own, the failures still say core / DNS."""
    cols = ["d_rsrp", "d_sinr", "d_ul_interf", "pm_down_share", "silent_share", "ul_vs_band_in", "interfered_share_in",
            "interfered_units_share", "hot_share_in", "prb_in", "d_prb", "hot_poor_share_in", "hot_units_share",
            "link_log_rtt_vs_net", "slow_units_share", "down_units_share"]
    link = {"d_log_rtt": 0.9, "link_d_log_rtt": 0.9, "link_share_in": 0.6}  # RTT x2.5 on the link that carries it
    rows = [{**link, "d_fail": 0.14, "d_fail_around": 0.15},  # inside the wider failure: transport
            {**link, "d_fail": 0.14, "d_fail_around": 0.0},  # failures of its own: core / DNS, as before
            {"d_log_rtt": 0.0, "link_d_log_rtt": 0.0, "link_share_in": 0.0, "d_fail": 0.14, "d_fail_around": 0.15}]  # no signal of its own
    ev = pa.table({**{c: [0.0] * len(rows) for c in cols}, "sessions": [500.0] * len(rows), "sites_in": [10.0] * len(rows),
                   **{k: [r[k] for r in rows] for k in rows[0]}})
    assert [CAUSES[i] for i in cause_scores(ev).argmax(1)] == ["transport", "core_dns", "core_dns"]


def test_a_steady_device_excess_is_one_run_though_few_days_pass_the_threshold_alone():
    """Device model x day rows as device_days gives them (each day's z past half the threshold): a firmware
    fault whose days read z 7-10 against a threshold of 8 is one run by its pooled excess; two scattered days
    are not a run, and neither are two days that pass half the threshold only."""
    day = dt.date(2026, 10, 14)

    def row(model, k, z, e=800.0, ratio0=0.9):
        return {"device_model": model, "day": day + dt.timedelta(days=k), "e": e, "ratio0": ratio0, "z": z,
                "o": e * ratio0 + z * np.sqrt(e * ratio0)}

    firmware = [row("X5", k, z) for k, z in enumerate([9.5, 6.3, 8.4, 7.5, 7.8, 10.2, 7.1, 7.9])]
    scattered = [row("A1", 0, 9.0), row("A1", 3, 9.0)]
    weak = [row("B2", 0, 4.5), row("B2", 1, 4.5)]
    runs = device_runs(sorted(firmware + scattered + weak, key=lambda r: (r["device_model"], r["day"])), 8.0)
    assert [(r[0]["device_model"], len(r)) for r in runs] == [("X5", 8)]


def test_state_places_every_session_of_the_window(shared):
    with Workspace(shared.ws).session(tables=("xdr",)) as engine:
        engine.register_parquet("state", [str(p) for p in (Workspace(shared.ws).twin / "state_grid_hour").rglob("*.parquet")])
        n_state = engine.query_row("SELECT sum(sessions) FROM state")[0]
        assert n_state == engine.row_count("xdr")
        row = engine.query_row("""SELECT count(*), count(cei), count(rsrp_dbm_p50), count(prb_util_dl), min(poor_share), max(poor_share)
                                  FROM state""")
        assert row[1] > 0.9 * row[0] and row[2] > 0.3 * row[0] and row[3] > 0.9 * row[0] and 0 <= row[4] <= row[5] <= 1
        # queryable by time range and area: one hour of one grid comes back alone
        g, h = engine.query_row("SELECT grid, hour FROM state ORDER BY sessions DESC LIMIT 1")
        assert engine.query_row("SELECT count(*) FROM state WHERE grid = $grid AND hour = $hour", {"grid": g, "hour": h})[0] == 1


def test_every_episode_has_a_cause_confidence_and_footprint(shared):
    ep = shared.diag.episodes.to_pylist()
    assert ep, "no episode found on an operator with injected faults"
    for e in ep:
        assert e["cause"] in CAUSES and 0 <= e["confidence"] <= 1 and e["evidence"]
        assert e["end_time"] > e["start_time"] and e["affected_subscribers"] <= e["subscribers"]
        assert e["kind"] == "device" or (e["grid_list"] and e["center_lat"] is not None and e["area_km2"] > 0)
    units = pq.read_table(Workspace(shared.ws).twin / "episode_units.parquet")
    assert set(units["episode_id"].to_pylist()) == {e["episode_id"] for e in ep if e["kind"] == "area"}


def test_diagnosis_finds_the_injected_faults_with_their_causes(shared, faults):
    start, end = shared.diag.start, shared.diag.end
    res = evaluate(shared.diag.episodes, faults, start, end)
    why = json.dumps(res, default=str)
    # A 3,000-subscriber operator has few sessions per grid-hour: only the strongest faults pass the
    # threshold and the causes of those few are often wrong (5 of 10 found, by 10 episodes whose causes
    # were all wrong when written). The accuracy figures come from the 20k x 28 benchmark (docs/twin.md);
    # this checks that what is found is real.
    assert res["precision"] >= 0.6, why
    assert res["faults_found"] >= 2, why
    # scored once per fault too: every fault once, its cause from its largest episode, per cause class
    per = res["per_fault"]
    assert sorted(r["fault_id"] for r in per) == sorted({f["fault_id"] for f in per}) and len(per) == res["faults"], why
    assert sum(r["found"] for r in per) == res["faults_found"], why
    assert all((r["diagnosed"] is None) == (not r["found"]) for r in per), why
    assert sum(c["faults"] for c in res["by_cause"].values()) == res["faults"], why
    assert res["fault_cause_right"] == sum(c["cause_right"] for c in res["by_cause"].values()) / res["faults"], why


def _same_twin(a: Path, b: Path, tol: float = 1e-12) -> None:
    """Every table the twin writes is equal in folders ``a`` and ``b`` (floats within ``tol``, relative or absolute)."""
    for name, keys in (("state_grid_hour", ["grid", "hour"]), ("state_grid_cell_hour", ["grid", "hour", "cell_id"]),
                       ("episodes", ["episode_id"]), ("episode_units", ["episode_id", "grid", "hour"]),
                       ("episode_subscribers", ["episode_id", "subscriber_id"])):
        x, y = (pq.read_table(f / name if (f / name).is_dir() else f / f"{name}.parquet") for f in (a, b))
        assert x.num_rows == y.num_rows > 0, name
        assert compare_tables(x, y, keys=keys, rel=tol, abs_tol=tol) == [], name


def test_rerun_reads_every_day_back_and_gives_the_same_twin(shared, clone):
    again = diagnose(clone(shared.ws))
    assert (again.days_built, again.days_reused) == (0, (shared.diag.end - shared.diag.start).days)
    differ = [c for c in again.episodes.column_names if not again.episodes[c].equals(shared.diag.episodes[c])]
    assert not differ, {c: (again.episodes[c].to_pylist(), shared.diag.episodes[c].to_pylist()) for c in differ}
    _same_twin(again.folder, shared.diag.folder)


def test_a_new_day_builds_that_day_alone_and_gives_what_a_run_from_nothing_gives(shared, clone):
    """Diagnose up to the day before the last, then the whole window: the second run builds one day's
    state and writes the tables the shared workspace's run from nothing wrote. An input file of a day
    written again (a new modification time) has that day built again; a radio file, also the days whose
    cell centres read it."""
    ws = clone(shared.ws, skip=("twin", "twin_days"))
    start, end = shared.diag.start, shared.diag.end
    first = diagnose(ws, start, end - dt.timedelta(days=1))
    assert (first.days_built, first.days_reused) == ((end - start).days - 1, 0)
    full = diagnose(ws, start, end)
    assert (full.days_built, full.days_reused) == (1, (end - start).days - 1)
    _same_twin(full.folder, shared.diag.folder)
    day = start + dt.timedelta(days=3)
    for table, rebuilt in (("xdr", 1), ("radio_samples", CENTROID_DAYS)):
        for f in (ws / "lake" / table / f"day={day}").glob("*.parquet"):  # the same rows in a new file (not the shared link)
            data = f.read_bytes()
            f.unlink()
            f.write_bytes(data)
        again = diagnose(ws, start, end)
        assert again.days_built == rebuilt, table
    _same_twin(again.folder, shared.diag.folder)


def test_a_diagnosis_that_finds_no_episode_still_writes_its_tables(shared, clone):
    ws = clone(shared.ws)
    first = shared.diag.start  # one day (no device run), and no cluster of grid-hours is large enough
    res = diagnose(ws, start=first, end=first + dt.timedelta(days=1), cfg=DetectConfig(min_grid_hours=10**9))
    assert res.episodes.num_rows == 0 and res.grid_hours > 0
    assert pq.read_table(ws / "twin" / "episode_subscribers.parquet").num_rows == 0


def test_geojson_of_episodes_and_state(shared):
    fc = episodes_geojson(load_episodes(shared.ws))
    area = [e for e in shared.diag.episodes.to_pylist() if e["kind"] == "area"]
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == len(area)
    poly = fc["features"][0]["geometry"]["coordinates"][0][0]
    assert poly[0] == poly[-1] and len(poly) == 7
    json.dumps(fc)  # serialisable as is
    st = state_geojson(shared.ws, dt.datetime.combine(shared.diag.start, dt.time()), dt.datetime.combine(shared.diag.end, dt.time()))
    props = st["features"][0]["properties"]
    assert {"grid", "sessions", "poor_share", "cei"} <= set(props) and props["sessions"] > 0


def test_cli_diagnose_prints_the_summary_and_writes_geojson(shared, clone, tmp_path):
    ws, out = clone(shared.ws), tmp_path / "episodes.geojson"
    r = CliRunner().invoke(app, ["diagnose", "--workspace", str(ws), "--geojson", str(out)])
    assert r.exit_code == 0, r.output
    assert "episodes" in r.output and "by cause" in r.output
    assert json.loads(out.read_text())["type"] == "FeatureCollection"
    bad = CliRunner().invoke(app, ["diagnose", "--workspace", str(ws), "--resolution", "17"])
    assert bad.exit_code == 2 and "resolution" in bad.output


def test_whatif_transport_fix_brings_rtt_down_and_nps_not_down(shared, faults):
    tr = next(f for f in faults if f["cause"] == "transport")
    cells = tr["cells"].split(";")
    start = tr["start_time"].date()
    end = min(tr["end_time"].date() + dt.timedelta(days=1), shared.diag.end)
    w = whatif(shared.ws, "fix_transport", start, end, cells=cells)
    assert w.kqi_after["rtt_ms"] < 0.8 * w.kqi_before["rtt_ms"]
    assert w.kqi_after["poor_share"] < w.kqi_before["poor_share"]
    assert w.cei_change > 0 and w.nps_after >= w.nps_before
    # the model's error on the lift: each bootstrap replica's lift, an interval around the model's
    low, high = w.nps_lift_interval
    assert len(w.replica_lifts) == len(NpsModel.load(Workspace(shared.ws).model("nps")).replicas) >= 2
    assert low < w.nps_lift < high and len(set(w.replica_lifts)) > 1
    with pytest.raises(ValueError, match="unknown what-if action"):
        whatif(shared.ws, "paint_it_green", start, end, cells=cells)


def test_whatif_capacity_takes_the_queueing_delay_away_with_the_load(shared):
    """Added capacity halves a cell's PRB load and lowers its RTT context by the delay that load explains on
    the network's cells: a busy session's context falls, an idle one's hardly moves."""
    with WhatIfEngine(shared.ws, shared.diag.start, shared.diag.end) as w:
        sessions = pa.table({c: pa.array([0.0, 0.0], pa.float64()) for c in NUMERIC})
        sessions = sessions.set_column(NUMERIC.index("prb_util_dl"), "prb_util_dl", pa.array([0.97, 0.08]))
        sessions = sessions.set_column(NUMERIC.index("ctx_log_rtt"), "ctx_log_rtt", pa.array([np.log(300.0), np.log(40.0)]))
        changed, _ = _counterfactual(w.network, sessions, "add_capacity", 0.5)
    assert changed["prb_util_dl"].to_pylist() == pytest.approx([0.485, 0.04])
    busy, idle = np.array(sessions["ctx_log_rtt"].to_pylist()) - np.array(changed["ctx_log_rtt"].to_pylist())
    assert busy > 0.2 and 0 <= idle < busy / 5, (busy, idle)


def _conditions(**given: list) -> pa.Table:
    """Sessions' what-if conditions: the columns given, every other one 0."""
    n = len(next(iter(given.values())))
    return pa.table({c: pa.array(given.get(c, [0.0] * n), pa.float64()) for c in NUMERIC})


def test_clearing_interference_changes_only_the_sessions_that_met_it():
    """Sessions on cells whose UL interference stood above the quiet level get the quiet UL and the scope's good
    SINR back; the others keep theirs, so an interferer that has stopped gains nothing. Without the counter,
    SINR alone says it, for every session."""
    def sessions(ul, sinr):
        return _conditions(ul_interference_dbm=ul, sinr_db=sinr)

    quiet = lambda name: pa.table({"ul_interference_dbm": [-116.0]})  # noqa: E731
    changed, radio = _counterfactual(quiet, sessions([-104.0, -115.0, None], [0.0, 2.0, 1.0]), "clear_interference", 0.5)
    good = float(np.quantile([0.0, 2.0, 1.0], 0.7))
    assert changed["sinr_db"].to_pylist() == pytest.approx([good, 2.0, 1.0])
    assert changed["ul_interference_dbm"].to_pylist()[:2] == [-116.0, -115.0] and radio["sinr_floor"] == pytest.approx(good)
    stopped, radio = _counterfactual(quiet, sessions([-115.0, -114.0], [0.0, 2.0]), "clear_interference", 0.5)
    assert stopped["sinr_db"].to_pylist() == [0.0, 2.0] and radio["sinr_floor"] is None
    no_counter, _ = _counterfactual(lambda name: pa.table({"ul_interference_dbm": pa.array([None], pa.float64())}),
                                    sessions([None, None], [0.0, 2.0]), "clear_interference", 0.5)
    assert no_counter["sinr_db"].to_pylist() == pytest.approx([float(np.quantile([0.0, 2.0], 0.7)), 2.0])


def test_fixing_transport_changes_only_the_cell_hours_whose_rtt_stood_far_above_the_network():
    """Cell-hours whose RTT stood TRANSPORT_LOG_RTT or more above the network's at that hour get the network's
    back; a link merely slower than the median, or one whose fault has ended, gains nothing."""
    network = lambda name: pa.table({"hod": list(range(24)), "log_rtt": [3.0] * 24})
    rtt = [3.0 + TRANSPORT_LOG_RTT + 0.3, 3.0 + TRANSPORT_LOG_RTT - 0.1, 2.5, None]
    changed, radio = _counterfactual(network, _conditions(ctx_log_rtt=rtt), "fix_transport", 0.5)
    assert changed["ctx_log_rtt"].to_pylist() == pytest.approx([3.0, 3.0 + TRANSPORT_LOG_RTT - 0.1, 2.5, float("nan")], nan_ok=True)
    assert radio == {"rsrp_floor": None, "sinr_floor": None}


def test_whatif_radio_fix_raises_the_reports_the_radio_features_read(shared):
    with WhatIfEngine(shared.ws, shared.diag.start, shared.diag.end) as w:
        weakest = w.engine.query_arrow("SELECT cell_id FROM radio_samples GROUP BY ALL ORDER BY median(rsrp_dbm), cell_id LIMIT 3")
        w.run("restore_coverage", cells=weakest["cell_id"].to_pylist(), horizon_days=3)
        sums = "SELECT sum(rsrp_sum), sum(rsrp_poor) FROM {} JOIN whatif_days USING (subscriber_id, day)"
        observed, scenario = (w.engine.query_row(sums.format(t)) for t in ("radio_subscriber_day_observed", "whatif_radio_day"))
        assert scenario[0] > observed[0] and scenario[1] < observed[1]
        # the next scenario sees the observed reports again
        assert w.engine.row_count("radio_subscriber_day") == w.engine.row_count("radio_subscriber_day_observed")


def test_an_interferer_seen_in_pm_is_an_interference_episode_naming_its_cells(shared, faults):
    """UL interference far above the band's other cells in the same hour places the interfered cells' grids
    in an episode (whether or not experience moved), and the cause names those cells."""
    interfered = {c for f in faults if f["cause"] == "interference" for c in (f["cells"] or "").split(";") if c}
    named = [e for e in shared.diag.episodes.to_pylist() if e["cause"] == "interference"]
    assert interfered and named, [(e["episode_id"], e["cause"], e["cells"]) for e in shared.diag.episodes.to_pylist()]
    assert all(set(e["cells"]) & interfered for e in named), ([e["cells"] for e in named], interfered)
    assert all("over their band's other cells" in e["evidence"] for e in named)


def test_a_backhaul_degraded_before_the_window_is_a_chronic_transport_episode_on_its_cells(shared, faults):
    """A fault older than the window is its own baseline: the grid's past cannot show it, its peers can."""
    begin = dt.datetime.combine(shared.diag.start, dt.time())
    old = {c for f in faults if f["cause"] == "transport" and f["start_time"] <= begin for c in (f["cells"] or "").split(";") if c}
    chronic = [e for e in shared.diag.episodes.to_pylist() if e["main_signal"] == "chronic_rtt"]
    assert old and chronic, [(e["episode_id"], e["cause"], e["main_signal"]) for e in shared.diag.episodes.to_pylist()]
    named = [e for e in chronic if e["cause"] == "transport" and set(e["cells"]) & old]
    assert named, [(e["cause"], e["cells"], e["evidence"]) for e in chronic]
    # the link's cells and only them (one episode per place the link's sites cover), over the window, not one evening
    assert all(set(e["cells"]) <= old and e["end_time"] - e["start_time"] > dt.timedelta(days=7) for e in named), named


def test_a_sector_congested_every_busy_hour_is_a_chronic_congestion_episode_naming_it(shared, faults):
    begin = dt.datetime.combine(shared.diag.start, dt.time())
    sector = {c for f in faults if f["cause"] == "congestion" and f["start_time"] <= begin for c in (f["cells"] or "").split(";") if c}
    named = [e for e in shared.diag.episodes.to_pylist() if e["main_signal"] == "chronic_prb_load" and e["cause"] == "congestion"]
    assert sector and any(sector & set(e["cells"]) for e in named), (sector, [(e["cells"], e["evidence"]) for e in named])
    assert all("of its grid-hours on cells hot at that hour on most days" in e["evidence"] for e in named)


def test_pm_signals_cluster_apart_and_a_chronic_one_by_place_alone():
    """An outage's grid-hours do not join a larger simultaneous experience cluster next door (a city-wide DNS
    failure), a smaller one is the outage's fringe and joins it, and a cell hot every evening is one episode
    over the days, not one per evening; the grid-hours of one slow transport link are one episode however far
    apart its sites are."""
    g = h3.latlng_to_cell(45.0, 4.0, 9)
    ring = sorted(set(h3.grid_disk(g, 1)) - {g})
    far = h3.latlng_to_cell(45.2, 4.0, 9)
    t0, hour = dt.datetime(2026, 10, 5, 18), dt.timedelta(hours=1)
    wide = [(x, t0, "fail_4h", False) for x in [g] + ring[1:]]  # six grid-hours
    rows = wide + [(ring[0], t0, "cell_down", True), (ring[0], t0 + hour, "cell_down", True),
                   (far, t0, "prb_surge", True), (far, t0 + hour, "prb_surge", True), (far, t0 + 2 * hour, "poor_4h", False),
                   (g, t0 + dt.timedelta(days=1), "chronic_prb_load", True), (g, t0 + dt.timedelta(days=5), "chronic_prb_load", True)]
    night = t0 + dt.timedelta(days=2, hours=5)  # one link's two sites, 20 km apart, and another link's site
    links = [(g, night, "L1"), (far, night + hour, "L1"), (h3.latlng_to_cell(45.0, 4.3, 9), night, "L2")]
    rows += [(x, t, "link_thp", True) for x, t, _ in links]
    units = pa.table({"grid": [r[0] for r in rows], "hour": pa.array([r[1] for r in rows], pa.timestamp("us")),
                      "signal": [r[2] for r in rows], "placed": [r[3] for r in rows],
                      "link": [None] * (len(rows) - len(links)) + [x[2] for x in links]})
    labels = _clusters(units, DetectConfig())
    n = len(wide)
    assert len(set(labels[:n])) == 1 and labels[n] == labels[n + 1] and labels[0] != labels[n]  # touching, but different faults
    assert labels[n + 2] == labels[n + 3] == labels[n + 4]  # the surge's fringe joins it
    c = len(rows) - len(links) - 1  # the second chronic grid-hour
    assert labels[c] == labels[c - 1] and labels[c] not in (labels[0], labels[n], labels[n + 2])  # days apart, one chronic episode
    assert labels[-3] == labels[-2] != labels[-1]  # by the link, not by place


def test_a_link_whose_counters_show_its_users_throttled_is_flagged_on_every_cell_and_one_interfered_site_is_not():
    """PM alone, no session: a backhaul that cuts the per-user throughput of every cell of its link at their
    usual load is a `link_thp` event on all of them; an interferer that cuts it on one of a link's two sites is not."""
    rng = np.random.default_rng(5)
    cells = [(f"{site}-{k}", site, link) for site, link, n in (("A", "L1", 3), ("B", "L1", 3), ("C", "L2", 3), ("D", "L2", 2))
             for k in range(n)]  # C carries most of L2's cells
    hours = np.arange(np.datetime64("2026-10-05T00"), np.datetime64("2026-10-19T00"), np.timedelta64(1, "h"))
    throttled = (hours >= np.datetime64("2026-10-15T01")) & (hours < np.datetime64("2026-10-15T04"))
    rows = []
    for cell, site, link in cells:
        hit = throttled & (link == "L1" or site == "C")  # L1 throttled; C interfered at the same hours
        log_thp = np.log(20.0) + rng.normal(0, 0.05, len(hours)) - 0.8 * hit
        rows += [(cell, h.astype(dt.datetime), 0.4, -105.0, float(v), "B3", 0.0) for h, v in zip(hours, log_thp)]
    engine = DuckDBEngine()
    try:
        engine.register_arrow("cell_hour_pm", pa.table({k: [r[i] for r in rows] for i, k in
                                                        enumerate(("cell_id", "hour", "prb", "ul", "log_thp", "band", "ul_vs_band"))}))
        engine.register_arrow("cells", pa.table({"cell_id": [c[0] for c in cells], "site_id": [c[1] for c in cells],
                                                 "transport_link_id": [c[2] for c in cells]}))
        engine.register_arrow("cell_hour_rtt", pa.table({"cell_id": pa.array([], pa.string()), "hour": pa.array([], pa.timestamp("us")),
                                                         "log_rtt": pa.array([], pa.float64()), "prb": pa.array([], pa.float64())}))
        engine.register_arrow("sess_cell_hour", pa.table({"cell_id": pa.array([], pa.string()), "hour": pa.array([], pa.timestamp("us")),
                                                          "cool": pa.array([], pa.bool_()), "rtt_n": pa.array([], pa.int64()),
                                                          "rtt_sum": pa.array([], pa.float64())}))
        engine.register_arrow("cell_down", pa.table({"cell_id": pa.array([], pa.string()), "period_start": pa.array([], pa.timestamp("us")),
                                                     "reason": pa.array([], pa.string())}))
        _cell_events(engine, DetectConfig())
        got = engine.query_arrow("SELECT cell_id, hour FROM cell_events WHERE signal = 'link_thp' ORDER BY hour, cell_id").to_pylist()
    finally:
        engine.close()
    want = [(c[0], h.astype(dt.datetime)) for h in hours[throttled] for c in cells if c[2] == "L1"]
    assert [(r["cell_id"], r["hour"]) for r in got] == sorted(want, key=lambda x: (x[1], x[0]))


@pytest.mark.spark
def test_spark_diagnoses_the_same_as_duckdb(shared, clone, tmp_path):
    """The twin's SQL (grid x hour state, PM units, evidence, episode subscribers) on Spark gives DuckDB's
    tables: the same state, episodes with their causes and cells, and subscribers (floats to 1e-9, relative or
    absolute). One day, the third, with two episodes on DuckDB: Spark takes about a minute a day here; the
    fault-finding itself is tested on DuckDB above."""
    start = shared.diag.start + dt.timedelta(days=2)
    end = start + dt.timedelta(days=1)
    ours = diagnose(clone(shared.ws, skip=("twin", "loop")), start, end)
    theirs_ws = tmp_path / "spark"
    shutil.copytree(shared.ws, theirs_ws, copy_function=os.link, ignore=lambda d, names: [n for n in names if n in ("twin", "loop")])
    theirs = diagnose(theirs_ws, start, end, engine="spark", spark_master="local[2]")
    assert theirs.grid_hours == ours.grid_hours > 0
    assert ours.episodes.num_rows >= 1
    _same_twin(ours.folder, theirs.folder, tol=1e-9)
