"""Segments and campaign lists on the suite's shared small operator (slow), and the clustering and the
capability reading on hand-made data (quick)."""

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from opencem.cli import app
from opencem.segments.campaigns import campaigns, capability_without_nr
from opencem.segments.cluster import cluster, mobility_class
from opencem.segments.common import DAY_PARTS, Behaviour
from opencem.segments.segment import DIMENSIONS, segment
from opencem.workspace import Workspace

MARKETING = ("device_upsell", "plan_upsell", "retention", "win_back")


def rows(t: pa.Table, **where) -> list[dict]:
    return [r for r in t.to_pylist() if all(r[k] == v for k, v in where.items())]


def lake(ws, sql, **params) -> pa.Table:
    with Workspace(ws).session() as engine:
        return engine.query_arrow(sql, params)


@pytest.fixture(scope="module")
def segmented(shared, tmp_path_factory):
    """The shared workspace segmented and its campaigns built, on a copy (the shared one stays read-only)."""
    import os
    import shutil

    ws = tmp_path_factory.mktemp("segments") / "ws"
    shutil.copytree(shared.ws, ws, copy_function=os.link, ignore=lambda d, names: [n for n in names if n in ("twin",)])
    return ws, segment(ws), campaigns(ws)


# -- segments ------------------------------------------------------------------------------------------------
def test_every_dimension_partitions_the_scored_base(shared, segmented):
    _, res, _ = segmented
    n = shared.scored.scores.num_rows
    seg = res.segments
    assert set(seg["dimension"].to_pylist()) == set(DIMENSIONS)
    for dim in DIMENSIONS:
        part = rows(seg, dimension=dim)
        assert sum(r["subscribers"] for r in part) == n, dim
        # the members' NPS: a size-weighted mean of the segments' NPS is the base's
        assert sum(r["nps"] * r["subscribers"] for r in part) / n == pytest.approx(shared.scored.base["nps"], abs=0.05), dim
    assert res.members.num_rows == n and pc.count_distinct(res.members["subscriber_id"]).as_py() == n
    quadrants = rows(seg, dimension="value_experience")
    assert len(quadrants) == 4
    # the quadrants are cut at the base's medians: the high-value ones hold the dearer half
    high = [r for r in quadrants if r["segment"].startswith("high value")]
    low = [r for r in quadrants if r["segment"].startswith("low value")]
    assert min(r["arpu_mean"] for r in high) > max(r["arpu_mean"] for r in low)
    good = [r for r in quadrants if "good experience" in r["segment"]]
    poor = [r for r in quadrants if "poor experience" in r["segment"]]
    assert min(r["nps"] for r in good) > max(r["nps"] for r in poor)
    assert all(r["churn_risk"] is None for r in seg.to_pylist())  # no churn scores in this workspace
    assert any("opencem score churn" in note for note in res.notes)


def test_clusters_are_named_from_their_centres(segmented):
    _, res, _ = segmented
    behaviour = rows(res.segments, dimension="behaviour")
    assert 2 <= len(behaviour) <= 7
    names = [r["segment"] for r in behaviour]
    assert len(set(names)) == len(names)
    for r in behaviour:
        assert r["definition"] and "MB/day" in r["definition"]
        # a cluster named after a service holds more of that service than the base does
        heavy = [w for w in r["segment"].split() if w.endswith("-heavy") and w != "mixed-use"]
        if heavy:
            service = heavy[0][: -len("-heavy")].replace(" ", "_")
            share, base = [float(x) for x in _shares(r["definition"], service)]
            assert share > base


def _shares(definition: str, service: str) -> tuple[str, str]:
    part = next(p for p in definition.split("; ") if p.startswith(service + " "))
    words = part.replace("(", " ").replace(")", " ").split()
    return words[1], words[4]


def test_segmenting_again_gives_identical_tables(segmented):
    ws, res, _ = segmented
    again = segment(ws)
    assert again.segments.equals(res.segments)
    assert again.members.equals(res.members)
    stored = pq.read_table(ws / "segments" / "segments" / f"as_of={res.as_of}" / "segments.parquet")
    assert stored.equals(res.segments)


def test_churn_scores_give_each_segment_its_risk(shared, segmented, clone):
    ws = clone(segmented[0])
    res = segmented[1]
    ids = res.members["subscriber_id"].to_pylist()
    p = np.linspace(0.01, 0.6, len(ids))
    churn = ws / "churn" / "scores" / f"as_of={res.as_of}"
    churn.mkdir(parents=True)
    pq.write_table(pa.table({"subscriber_id": ids, "p_4m": p, "cause": ["price"] * len(ids)}), churn / "part.parquet")
    out = segment(ws)
    assert not out.notes
    members = out.members.to_pylist()
    for r in rows(out.segments, dimension="device_capability"):
        want = np.mean([p[i] for i, m in enumerate(members) if m["device_capability"] == r["segment"]])
        assert r["churn_risk"] == pytest.approx(want, abs=1e-4)


def test_a_day_not_scored_is_a_one_line_error(segmented):
    ws = segmented[0]
    for cmd in ("segments", "campaigns"):
        r = CliRunner().invoke(app, [cmd, "--workspace", str(ws), "--as-of", "2020-01-01"])
        assert r.exit_code == 2, r.output
        assert r.output.strip().count("\n") == 0 and "--as-of 2020-01-01" in r.output and "opencem score" in r.output


# -- campaigns -----------------------------------------------------------------------------------------------
def test_no_marketing_list_holds_a_subscriber_without_consent(segmented):
    ws, _, camp = segmented
    refused = set(lake(ws, "SELECT subscriber_id FROM subscribers WHERE NOT consent_marketing")["subscriber_id"].to_pylist())
    assert len(refused) > 100  # the workspace has subscribers without consent
    summary = {r["list"]: r for r in camp.summary.to_pylist()}
    # consent made a difference: some would have qualified
    assert sum(summary[name]["left_out_without_consent"] for name in MARKETING) > 0
    assert sum(summary[name]["subscribers"] for name in MARKETING) > 0
    folder = camp.folder
    for name in MARKETING:
        assert summary[name]["marketing"]
        for t in (camp.lists[name], pq.read_table(folder / f"{name}.parquet"),
                  pcsv.read_csv(folder / f"{name}.csv", convert_options=pcsv.ConvertOptions(column_types={"subscriber_id": pa.string()}))
                  if camp.lists[name].num_rows else camp.lists[name]):
            assert not refused & set(t["subscriber_id"].to_pylist()), name
    assert not summary["proactive_care"]["marketing"]  # a service message: consent is not asked for it


def test_lists_are_exported_with_size_uplift_and_assumption(segmented):
    _, _, camp = segmented
    for r in camp.summary.to_pylist():
        t = camp.lists[r["list"]]
        assert r["subscribers"] == t.num_rows
        assert pq.read_table(camp.folder / f"{r['list']}.parquet").num_rows == t.num_rows
        assert (camp.folder / f"{r['list']}.csv").read_text().count("\n") == t.num_rows + (1 if t.num_columns else 0)
        assert r["assumption"]
        if r["available"]:
            assert r["expected_uplift"] is not None and r["expected_uplift"] >= 0
    retention = rows(camp.summary, list="retention")[0]
    assert not retention["available"] and "opencem score churn" in retention["assumption"]


def test_proactive_care_lists_network_caused_detractors_of_the_area(shared, segmented, clone):
    ws, _, camp = segmented
    det = shared.scored.detractors
    net = set(det.filter(det["network_cause"])["subscriber_id"].to_pylist())
    care = camp.lists["proactive_care"]
    assert care.num_rows and set(care["subscriber_id"].to_pylist()) == net
    area = max(set(care["home_area"].to_pylist()), key=lambda a: (care["home_area"].to_pylist().count(a), a))
    local = campaigns(clone(ws), areas=[area]).lists["proactive_care"]
    assert 0 < local.num_rows < care.num_rows
    assert all(a == area or g == area for a, g in zip(local["home_area"].to_pylist(), local["grid"].to_pylist()))


def test_device_upsell_picks_heavy_users_whose_devices_never_ran_on_nr(segmented):
    ws, seg, camp = segmented
    t = camp.lists["device_upsell"]
    assert t.num_rows > 0
    on_nr = set(lake(ws, "SELECT DISTINCT s.device_capability FROM xdr x JOIN subscribers s USING (subscriber_id) "
                         "WHERE x.rat = 'NR'")["device_capability"].to_pylist())
    assert not on_nr & set(t["device_capability"].to_pylist())
    mb = seg.members["mb_per_day"].to_numpy()
    assert min(t["mb_per_day"].to_pylist()) >= np.quantile(mb, 0.75) - 0.1
    assert min(t["good_nr_place_share"].to_pylist()) >= 0.5


def test_plan_upsell_offers_a_dearer_plan_to_heavy_users_of_their_plan(segmented):
    _, _, camp = segmented
    t = camp.lists["plan_upsell"]
    assert t.num_rows > 0
    assert min(t["usage_vs_plan_median"].to_pylist()) >= 2
    assert min(t["price_step"].to_pylist()) > 0
    assert all(a != b for a, b in zip(t["plan"].to_pylist(), t["next_plan"].to_pylist()))


def test_retention_list_of_the_churn_stage_keeps_only_consenting(segmented, clone):
    ws = clone(segmented[0])
    as_of = segmented[1].as_of
    subs = lake(ws, "SELECT subscriber_id, consent_marketing FROM subscribers ORDER BY subscriber_id LIMIT 200")
    folder = ws / "churn" / "retention" / f"as_of={as_of}"
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"subscriber_id": subs["subscriber_id"], "expected_value_saved": [10.0] * 200}), folder / "part.parquet")
    camp = campaigns(ws)
    t = camp.lists["retention"]
    consenting = {r["subscriber_id"] for r in subs.to_pylist() if r["consent_marketing"]}
    assert set(t["subscriber_id"].to_pylist()) == consenting
    r = rows(camp.summary, list="retention")[0]
    assert r["available"] and r["left_out_without_consent"] == 200 - len(consenting)
    assert r["expected_uplift"] == pytest.approx(10.0 * len(consenting))


def test_cli_prints_segments_and_campaigns(segmented, clone, wide_console):
    ws = clone(segmented[0])
    r = CliRunner().invoke(app, ["segments", "--workspace", str(ws)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "value_experience" in r.output and "ARPU" in r.output and "opencem score churn" in r.output
    r = CliRunner().invoke(app, ["campaigns", "--workspace", str(ws), "--area", "nowhere-at-all"])
    assert r.exit_code == 2 and "--area 'nowhere-at-all'" in r.output
    r = CliRunner().invoke(app, ["campaigns", "--workspace", str(ws)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "device_upsell" in r.output and "take-up assumed" in r.output


# -- quick: clustering and capability on hand-made data ----------------------------------------------------------
def _behaviour(n_each: int = 60) -> Behaviour:
    """Two obvious kinds of customer: evening video streamers who commute, morning callers who stay home."""
    rng = np.random.default_rng(1)
    n = 2 * n_each
    ids = np.array([f"s{i:04d}" for i in range(n)], dtype=object)
    svc = np.zeros((n, 3))  # services in the data's own words, sorted
    svc[:n_each] = [5, 40, 5] + rng.integers(0, 3, (n_each, 3))  # calls, streaming, web
    svc[n_each:] = [40, 3, 8] + rng.integers(0, 3, (n_each, 3))
    parts = np.zeros((n, len(DAY_PARTS)))
    parts[:n_each] = [2, 5, 10, 33] + rng.integers(0, 3, (n_each, 4))
    parts[n_each:] = [2, 30, 12, 6] + rng.integers(0, 3, (n_each, 4))
    mb = np.r_[rng.normal(900, 50, n_each), rng.normal(80, 10, n_each)]
    hw = np.r_[rng.normal(8, 1, n_each), rng.normal(0.2, 0.1, n_each)]
    gy = np.r_[rng.normal(4, 0.5, n_each), rng.normal(0.5, 0.1, n_each)]
    return Behaviour(ids, ["calls", "streaming", "web"], svc, parts, mb, np.zeros(n), hw, gy, np.full(n, 2.0))


def test_clusters_are_named_in_words_from_the_data():
    b = _behaviour()
    c = cluster(b, k=2)
    first, second = c.labels[0], c.labels[-1]
    assert first != second and set(c.labels) == {first, second}
    assert "streaming-heavy" in first and "evening" in first and "high-volume" in first and "commuters" in first
    assert "calls-heavy" in second and "morning" in second and "light" in second
    assert (c.labels[:60] == first).all() and (c.labels[60:] == second).all()
    again = cluster(b, k=2)
    assert (again.labels == c.labels).all() and again.names == c.names


def test_subscribers_without_sessions_are_their_own_group():
    b = _behaviour(20)
    b.service_sessions[:3] = 0
    c = cluster(b, k=2)
    assert (c.labels[:3] == "no data sessions").all() and "no data sessions" not in set(c.labels[3:])
    assert (mobility_class(b)[20:] == "home-based").all() and (mobility_class(b)[3:20] == "commuter").all()


def test_capability_labels_without_nr_are_read_from_the_sessions():
    cap = pa.table({"device_capability": ["LTE only", "NR SA", "NR NSA"], "subscribers": [10, 10, 10],
                    "sessions": [1000, 1000, 1000], "nr_sessions": [2, 600, 40]})
    assert capability_without_nr(cap) == (["LTE only"], ["NR SA", "NR NSA"])


def test_as_of_must_be_a_day_the_nps_stage_scored(tmp_path):
    from opencem.errors import InputError
    from opencem.segments.common import resolve_as_of

    ws = Workspace(tmp_path)
    with pytest.raises(InputError, match="opencem score"):
        resolve_as_of(ws, None)
    (ws.nps / "scores" / "as_of=2026-10-21").mkdir(parents=True)
    assert resolve_as_of(ws, None) == dt.date(2026, 10, 21)
    with pytest.raises(InputError, match="--as-of 2026-10-20"):
        resolve_as_of(ws, dt.date(2026, 10, 20))
