"""The digital twin end to end on a small synthetic operator with faults of every cause: state,
episodes, causes, GeoJSON, CLI, what-if, and accuracy against the operator's truth."""

from __future__ import annotations

import datetime as dt
import json

import h3
import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from opencem.cli import app
from opencem.geo import grid_of
from opencem.ingest.pseudonym import KEY_ENV
from opencem.measure.run import measure
from opencem.nps.train import train_nps
from opencem.synth.generator import SynthConfig, generate
from opencem.twin.accuracy import evaluate, load_faults
from opencem.twin.episodes import cluster
from opencem.twin.run import diagnose, episodes_geojson, load_episodes, state_geojson
from opencem.twin.whatif import whatif
from opencem.vocabulary import CAUSES
from opencem.workspace import Workspace

# 20 days: two short faults of each area cause, a crowd event, two DNS failures, the device firmware
CONFIG = SynthConfig(subscribers=4000, days=20, seed=4, survey_rate=1.0, workers=2)


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.delenv(KEY_ENV, raising=False)
    root = tmp_path_factory.mktemp("twin")
    data, ws = root / "op", root / "ws"
    generate(data, CONFIG)
    measure(data, ws)
    diag = diagnose(ws)
    with Workspace(ws).session(tables=("cells",)) as engine:
        faults = load_faults(data / "truth", engine.table_arrow("cells"))
    yield type("Twin", (), {"data": data, "ws": ws, "diag": diag, "faults": faults})
    mp.undo()


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


def test_state_places_every_session_of_the_window(twin):
    with Workspace(twin.ws).session(tables=("xdr",)) as engine:
        engine.register_parquet("state", [str(p) for p in (Workspace(twin.ws).twin / "state_grid_hour").rglob("*.parquet")])
        n_state = engine.query_row("SELECT sum(sessions) FROM state")[0]
        assert n_state == engine.row_count("xdr")
        row = engine.query_row("""SELECT count(*), count(cei), count(rsrp_dbm_p50), count(prb_util_dl), min(poor_share), max(poor_share)
                                  FROM state""")
        assert row[1] > 0.9 * row[0] and row[2] > 0.3 * row[0] and row[3] > 0.9 * row[0] and 0 <= row[4] <= row[5] <= 1
        # queryable by time range and area: one hour of one grid comes back alone
        g, h = engine.query_row("SELECT grid, hour FROM state ORDER BY sessions DESC LIMIT 1")
        assert engine.query_row("SELECT count(*) FROM state WHERE grid = $grid AND hour = $hour", {"grid": g, "hour": h})[0] == 1


def test_every_episode_has_a_cause_confidence_and_footprint(twin):
    ep = twin.diag.episodes.to_pylist()
    assert ep, "no episode found on an operator with injected faults"
    for e in ep:
        assert e["cause"] in CAUSES and 0 <= e["confidence"] <= 1 and e["evidence"]
        assert e["end_time"] > e["start_time"] and e["affected_subscribers"] <= e["subscribers"]
        assert e["kind"] == "device" or (e["grid_list"] and e["center_lat"] is not None and e["area_km2"] > 0)
    units = pq.read_table(Workspace(twin.ws).twin / "episode_units.parquet")
    assert set(units["episode_id"].to_pylist()) == {e["episode_id"] for e in ep if e["kind"] == "area"}


def test_diagnosis_finds_the_injected_faults_with_their_causes(twin):
    start, end = twin.diag.start, twin.diag.end
    res = evaluate(twin.diag.episodes, twin.faults, start, end)
    why = json.dumps(res, default=str)
    # A 4,000-subscriber operator has few sessions per grid-hour: only the strongest faults pass the
    # threshold and the causes of those few are often wrong (3 of 11 found, causes 0 of 3 right when
    # written). The accuracy figures come from the 20k x 28 benchmark (docs/twin.md); this checks that
    # what is found is real.
    assert res["precision"] >= 0.6, why
    assert res["faults_found"] >= 2, why


def test_rerun_gives_the_same_episodes(twin, tmp_path):
    again = diagnose(twin.ws).episodes
    differ = [c for c in again.column_names if not again[c].equals(twin.diag.episodes[c])]
    assert not differ, {c: (again[c].to_pylist(), twin.diag.episodes[c].to_pylist()) for c in differ}


def test_geojson_of_episodes_and_state(twin):
    fc = episodes_geojson(load_episodes(twin.ws))
    area = [e for e in twin.diag.episodes.to_pylist() if e["kind"] == "area"]
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == len(area)
    poly = fc["features"][0]["geometry"]["coordinates"][0][0]
    assert poly[0] == poly[-1] and len(poly) == 7
    json.dumps(fc)  # serialisable as is
    st = state_geojson(twin.ws, dt.datetime.combine(twin.diag.start, dt.time()), dt.datetime.combine(twin.diag.end, dt.time()))
    props = st["features"][0]["properties"]
    assert {"grid", "sessions", "poor_share", "cei"} <= set(props) and props["sessions"] > 0


def test_cli_diagnose_prints_the_summary_and_writes_geojson(twin, tmp_path):
    out = tmp_path / "episodes.geojson"
    r = CliRunner().invoke(app, ["diagnose", "--workspace", str(twin.ws), "--geojson", str(out)])
    assert r.exit_code == 0, r.output
    assert "episodes" in r.output and "by cause" in r.output
    assert json.loads(out.read_text())["type"] == "FeatureCollection"
    bad = CliRunner().invoke(app, ["diagnose", "--workspace", str(twin.ws), "--resolution", "17"])
    assert bad.exit_code == 2 and "resolution" in bad.output


def test_whatif_transport_fix_brings_rtt_down_and_nps_not_down(twin):
    train_nps(twin.ws).save(Workspace(twin.ws).model("nps"))
    tr = next(f for f in twin.faults if f["cause"] == "transport")
    cells = tr["cells"].split(";")
    start = tr["start_time"].date()
    end = min(tr["end_time"].date() + dt.timedelta(days=1), twin.diag.end)
    w = whatif(twin.ws, "fix_transport", start, end, cells=cells)
    assert w.kqi_after["rtt_ms"] < 0.8 * w.kqi_before["rtt_ms"]
    assert w.kqi_after["poor_share"] < w.kqi_before["poor_share"]
    assert w.cei_change > 0 and w.nps_after >= w.nps_before
    with pytest.raises(ValueError, match="unknown what-if action"):
        whatif(twin.ws, "paint_it_green", start, end, cells=cells)
