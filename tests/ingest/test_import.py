"""`opencem import`: another operator's tables, through a mapping, become OpenCEM's contracts.

Unit tests of the conversions, then the foreign profile (its own names, units, local time, reduced PM and
no PM rows while a site is off air) brought back through its hand-written mapping: the same inputs, KQIs,
CEIs and NPS scores as the canonical profile of the same seed."""

import json
import math
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from opencem import contracts
from opencem.cli import app
from opencem.contracts.validate import find_table_files
from opencem.errors import InputError
from opencem.ingest.importer import REPORT_FOLDER, import_tables
from opencem.ingest.readiness import check_readiness
from opencem.ingest.mapping import load_mapping
from opencem.ingest.units import conversion_sql
from opencem.measure.run import measure
from opencem.nps.score import score
from opencem.nps.train import train_nps
from opencem.synth.foreign import MAPPING, PM_DROPPED, export_foreign
from opencem.twin.accuracy import _overlaps, load_faults
from opencem.twin.run import diagnose
from opencem.workspace import Workspace


def _convert(value: float, src: str, dst: str) -> float:
    from opencem.engine import make_engine

    with make_engine("duckdb") as eng:
        return eng.query_row(f"SELECT {conversion_sql('$x', src, dst)}", {"x": value})[0]


@pytest.mark.parametrize("value, src, dst, expected", [
    (1.0, "MB", "Mbit", 8.0), (0.0386, "s", "ms", 38.6), (2.5, "kB/s", "kbit/s", 20.0),
    (39.810717, "W", "dBm", 46.0), (-30.0, "dBm", "mW", 0.001), (16.0, "dBW", "dBm", 46.0),
    (0.5, "dimensionless", "%", 50.0), (100.0, "ft", "m", 30.48), (3.5, "GHz", "MHz", 3500.0),
])
def test_units_convert_to_the_contracts(value, src, dst, expected):
    assert math.isclose(_convert(value, src, dst), expected, rel_tol=1e-6)


@pytest.mark.parametrize("src, dst, words", [("s", "dBm", "cannot convert"), ("furlongs/fortnight", "ms", "cannot convert")])
def test_a_unit_that_does_not_convert_is_one_clear_error(src, dst, words):
    with pytest.raises(InputError, match=words):
        conversion_sql("x", src, dst)


CARE_CSV = """TICKET;CUST;OPENED;CHANNEL;TOPIC;COMPLAINT;DONE
1;A;2026-07-01 12:00:00;Phone;Bill query;Y;N
2;B;2026-12-01 12:00:00;App;No signal;N;Y
3;C;2026-10-25 02:30:00;App;No signal;N;Y
4;D;2026-10-05T10:00:00+05:30;App;No signal;N;Y
5;E;yesterday;App;Roaming;N;Y
"""

CARE_MAPPING = """
timezone: Europe/Berlin
tables:
  care_contacts:
    files: care/*.csv
    delimiter: ";"
    columns:
      contact_id: TICKET
      subscriber_id: CUST
      contact_time: OPENED
      channel: CHANNEL
      category: {from: TOPIC, values: {Bill query: billing, No signal: coverage}}
      is_complaint: {from: COMPLAINT, values: {"Y": true, "N": false}}
      resolved: {from: DONE, values: {"Y": true, "N": false}}
"""


def _operator(tmp_path: Path, mapping: str = CARE_MAPPING, csv: str = CARE_CSV) -> tuple[Path, Path]:
    (tmp_path / "src" / "care").mkdir(parents=True)
    (tmp_path / "src" / "care" / "tickets.csv").write_text(csv)
    (tmp_path / "map.yaml").write_text(mapping)
    return tmp_path / "src", tmp_path / "map.yaml"


def _read(folder: Path) -> list[dict]:
    return ds.dataset(folder, format="parquet", partitioning="hive").to_table().sort_by("contact_id").to_pylist()


def test_local_time_becomes_utc_across_daylight_saving_and_values_get_their_meaning(tmp_path):
    src, mapping = _operator(tmp_path)
    out = tmp_path / "out"
    [res] = import_tables(src, mapping, out)
    rows = _read(out / "care_contacts")
    utc = {r["contact_id"]: r["contact_time"].isoformat() for r in rows}
    assert utc[1] == "2026-07-01T10:00:00"  # summer time, UTC+2
    assert utc[2] == "2026-12-01T11:00:00"  # winter time, UTC+1
    assert utc[3] == "2026-10-25T01:30:00"  # the hour repeated when clocks go back: read as standard time
    assert utc[4] == "2026-10-05T04:30:00"  # a written offset wins over the zone
    assert [r["category"] for r in rows] == ["billing", "coverage", "coverage", "coverage"]
    assert [r["is_complaint"] for r in rows] == [True, False, False, False]
    assert [r["channel"] for r in rows] == ["Phone", "App", "App", "App"]  # a plain name: kept as it is
    # the row that cannot be read is kept aside with the operator's own text, file and row
    q = pq.read_table(out / REPORT_FOLDER / "quarantine.parquet").to_pylist()
    assert [(r["source_file"], r["row"], r["column"], r["value"]) for r in q] == [("care/tickets.csv", 5, "contact_time", "yesterday")]
    assert res.rows == 4 and res.quarantined == 1


def test_a_rerun_gives_the_same_files_and_a_foreign_folder_is_not_overwritten(tmp_path):
    src, mapping = _operator(tmp_path)
    out = tmp_path / "out"
    import_tables(src, mapping, out)
    first = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*.parquet"))}
    import_tables(src, mapping, out)
    assert {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*.parquet"))} == first
    mine = tmp_path / "mine"
    (mine / "notes.txt").parent.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="not an earlier import"):
        import_tables(src, mapping, mine)
    assert (mine / "notes.txt").read_text() == "keep me"


def test_a_file_without_a_required_column_is_set_aside_whole(tmp_path):
    src, mapping = _operator(tmp_path, csv=CARE_CSV.replace("CUST;", "CUSTOMER;"))
    result = CliRunner().invoke(app, ["import", "--from", str(src), "--mapping", str(mapping), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "care/tickets.csv: no column 'CUST' (mapped to care_contacts.subscriber_id, which is required)" in result.output
    assert json.loads((tmp_path / "o" / REPORT_FOLDER / "report.json").read_text())[0]["rejected"]
    aside = tmp_path / "o" / REPORT_FOLDER / "rejected" / "care" / "tickets.csv"
    assert aside.read_text() == CARE_CSV.replace("CUST;", "CUSTOMER;") and aside.with_name("tickets.csv.reason.txt").exists()


def _value(counter: str, cell: int) -> float:
    return {"VS.UlInterfAvg": -110.0, "VS.CqiAvg": 9.0, "RRC.ConnEstabAtt": 20.0 + cell}.get(counter, 10.0 + cell)


def _pm_xml(counters: list[str]) -> str:
    """A 3GPP TS 32.435 file: two cells, one 15-minute period, local time with its offset, vendor counter names."""
    values = "".join(
        f'<measValue measObjLdn="SubNetwork=N,ManagedElement=ME7,EUtranCellFDD={cell}">'
        f'<measResults>{" ".join(str(_value(c, k)) for c in counters)}</measResults></measValue>'
        for k, cell in enumerate(("Lisboa_Norte_1", "Lisboa_Norte_2")))
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<measCollecFile xmlns="http://www.3gpp.org/ftp/specs/archive/32_series/32.435#measCollec">
  <fileHeader fileFormatVersion="32.435 V10.0" vendorName="V"><fileSender localDn="ME7"/>
    <measCollec beginTime="2026-10-05T10:00:00+01:00"/></fileHeader>
  <measData><managedElement localDn="ME7"/>
    <measInfo><granPeriod duration="PT15M" endTime="2026-10-05T10:15:00+01:00"/>
      <measTypes>{" ".join("v" + c for c in counters)}</measTypes>{values}</measInfo></measData>
  <fileFooter><measCollec endTime="2026-10-05T10:15:00+01:00"/></fileFooter>
</measCollecFile>"""


def test_pm_xml_imports_with_vendor_counter_names(tmp_path):
    pm = contracts.get("pm")
    counters = [c.name for c in pm.columns if c.dtype != "string" and c.name not in ("period_start", "granularity_s")]
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "A20261005.1000+0100-1015+0100_ME7.xml").write_text(_pm_xml(counters))
    columns = "\n".join(f"      {c}: v{c}" for c in counters if c != "DRB.PdcpSduVolumeDl")
    (tmp_path / "map.yaml").write_text(f"""tables:
  pm:
    files: "*.xml"
    columns:
      DRB.PdcpSduVolumeDl: {{from: vDRB.PdcpSduVolumeDl, unit: kbit}}
{columns}
""")
    [res] = import_tables(tmp_path / "src", tmp_path / "map.yaml", tmp_path / "out")
    assert res.rows == 2 and res.quarantined == 0 and not res.rejected, res
    rows = ds.dataset(tmp_path / "out" / "pm", format="parquet", partitioning="hive").to_table().sort_by("cell_id").to_pylist()
    assert [r["cell_id"] for r in rows] == ["Lisboa_Norte_1", "Lisboa_Norte_2"]  # the measured object's own name
    assert rows[0]["period_start"].isoformat() == "2026-10-05T09:00:00" and rows[0]["granularity_s"] == 900
    assert rows[1]["DRB.PdcpSduVolumeDl"] == pytest.approx(11 / 1000)  # kbit -> Mbit
    assert rows[1]["RRC.ConnEstabAtt"] == 21 and rows[0]["VS.UlInterfAvg"] == -110


@pytest.mark.parametrize("change, words", [
    (("care_contacts:", "complaints:"), "tables.complaints: no such contract"),
    (("contact_id: TICKET", "ticket_no: TICKET"), "care_contacts has no column 'ticket_no'"),
    (("Europe/Berlin", "Europe/Berln"), "unknown time zone 'Europe/Berln'"),
    (("subscriber_id: CUST", "subscriber_id: {from: CUST, unit: s}"), "a unit is given for a string column"),
    (("delimiter:", "delimitr:"), "Extra inputs are not permitted"),
])
def test_a_bad_mapping_stops_before_any_file_is_read(tmp_path, change, words):
    _, mapping = _operator(tmp_path, mapping=CARE_MAPPING.replace(*change))
    with pytest.raises(InputError, match=words):
        load_mapping(mapping)


def test_the_shipped_foreign_mapping_loads():
    m = load_mapping(MAPPING)
    assert set(m.tables) == set(contracts.TABLES) and m.timezone == "Asia/Kolkata"


# --------------------------------------------------------------------------------------------------
# The foreign profile, end to end, against the canonical one of the same seed (the shared operator)

def _table(folder: Path, name: str) -> pa.Table:
    t = pa.concat_tables([pq.read_table(f) for f in find_table_files(folder, name)])
    return t.select([c for c in contracts.get(name).column_names if c in t.column_names])


def _same(a: pa.Table, b: pa.Table, keys: list[str], skip: tuple[str, ...] = ()) -> list[str]:
    """Columns that differ between two tables (floats to 1e-9 relative), after sorting both by keys."""
    order = [(k, "ascending") for k in keys]
    a, b = a.sort_by(order), b.sort_by(order)
    if a.num_rows != b.num_rows:
        return [f"rows {a.num_rows} != {b.num_rows}"]
    out = []
    for c in a.column_names:
        if c in skip:
            continue
        x, y = a[c], b[c].cast(a[c].type)
        if pa.types.is_floating(x.type):
            if not pc.all(pc.fill_null(pc.equal(pc.is_null(x), pc.is_null(y)), False)).as_py():
                out.append(f"{c}: nulls differ")
            elif (pc.max(pc.abs(pc.subtract(x, y))).as_py() or 0) > 1e-9 * max(1.0, pc.max(pc.abs(x)).as_py() or 0):
                out.append(f"{c}: values differ")
        elif not x.equals(y):
            out.append(f"{c}: values differ")
    return out


@pytest.fixture(scope="module")
def foreign(shared, tmp_path_factory):
    """The shared operator exported as the foreign operator, imported back with its mapping, and measured with
    the shared workspace's pseudonym key."""
    root = tmp_path_factory.mktemp("foreign")
    export_foreign(shared.data, root / "export")
    results = import_tables(root / "export" / "inputs", root / "export" / "mapping.yaml", root / "data")
    ws = root / "ws"
    Workspace(ws).pseudonym_key.parent.mkdir(parents=True)
    shutil.copyfile(Workspace(shared.ws).pseudonym_key, Workspace(ws).pseudonym_key)
    measured = measure(root / "data", ws)
    yield root, results, measured
    shutil.rmtree(root, ignore_errors=True)  # its 0.8 GB are not needed past this module


def test_the_foreign_export_imports_without_a_bad_row(foreign):
    _, results, measured = foreign
    assert all(r.quarantined == 0 and not r.rejected for r in results), results
    assert measured.ingest.quarantined == {} and measured.ingest.rejected == []
    warned = " ".join(w for r in results for w in r.warnings)
    assert "no column 'RRC.ConnMax', 'VS.UlInterfAvg'" in warned and "no column 'height_m'" in warned


def test_the_foreign_export_gives_the_canonical_inputs_back(shared, foreign):
    root, _, _ = foreign
    canonical, imported = shared.data / "inputs", root / "data"
    for name, t in contracts.TABLES.items():
        if not find_table_files(canonical, name):
            continue
        a, b = _table(canonical, name), _table(imported, name)
        if name in ("subscribers", "tariffs"):  # the foreign operator's plan names are its own: kept as they are
            assert pc.all(pc.starts_with(b["plan"], "Verde ")).as_py()
        keys = {"pm": ["cell_id", "period_start"], "cells": ["cell_id"]}.get(name, list(t.key) or t.column_names[:2])
        if name == "subscriber_contracts":  # its own contract names too
            assert b["contract_type"].to_pylist() == [t.upper() for t in b["contract_type"].to_pylist()]
        skip = {"subscribers": ("plan",), "tariffs": ("plan",), "cells": ("height_m",), "pm": PM_DROPPED,
                "subscriber_contracts": ("contract_type",)}.get(name, ())
        if name == "pm":  # no PM rows while a site was off air: the canonical rows of those periods are the difference
            assert 0 < a.num_rows - b.num_rows < 0.01 * a.num_rows
            a = a.join(b.select(["cell_id", "period_start"]), ["cell_id", "period_start"], join_type="inner")
            for col in PM_DROPPED:
                assert b[col].null_count == b.num_rows
        assert not _same(a, b, keys, skip), (name, _same(a, b, keys, skip))


def test_the_foreign_kpis_match_and_doctor_names_exactly_what_was_degraded(shared, foreign):
    root, _, _ = foreign
    a = pa.concat_tables([pq.read_table(f) for f in Workspace(shared.ws).measure_files("kpi_cell_15min")])
    b = pa.concat_tables([pq.read_table(f) for f in Workspace(root / "ws").measure_files("kpi_cell_15min")])
    assert a.num_rows == b.num_rows and pc.all(a["pm_reported"]).as_py()
    down = b.filter(pc.invert(b["pm_reported"]))  # the off-air periods: a row each, every KPI NULL
    assert 0 < down.num_rows and down["prb_util_dl"].null_count == down.num_rows
    reported = b.filter(b["pm_reported"])
    a = a.join(reported.select(["cell_id", "period_start"]), ["cell_id", "period_start"], join_type="inner")
    assert not _same(a.select(reported.column_names), reported, ["cell_id", "period_start"],
                     skip=("rrc_users_max", "ul_interference_dbm"))
    assert reported["rrc_users_max"].null_count == reported["ul_interference_dbm"].null_count == reported.num_rows

    effects = {r.table: r.effect or "" for r in check_readiness(root / "data")}
    lost_kpis = [p.split(" (")[0] for p in effects["pm"].split(": ", 1)[1].split("; ")]
    assert lost_kpis == ["KPI rrc_users_max", "KPI ul_interference_dbm"], effects["pm"]
    assert "height_m" in effects["cells"]


def test_the_foreign_export_gives_the_same_kqi_cei_and_nps(shared, foreign):
    root, _, _ = foreign
    ws, canonical = Workspace(root / "ws"), Workspace(shared.ws)
    keys = {"kqi_pspu_day": ["subscriber_id", "service", "day"], "cei_service_day": ["subscriber_id", "service", "day"],
            "cei_subscriber_day": ["subscriber_id", "day"], "cei_journey_day": ["subscriber_id", "journey", "day"]}
    for name, k in keys.items():
        a = pa.concat_tables([pq.read_table(f) for f in canonical.measure_files(name)])
        b = pa.concat_tables([pq.read_table(f) for f in ws.measure_files(name)])
        assert not _same(a, b, [c for c in k if c in a.column_names]), (name, _same(a, b, k))
    # the plan is a model input: a model of the foreign names, trained on the same answers, gives the same NPS
    model = train_nps(ws.root)
    assert model.card["metrics_on_respondents"] == shared.model.card["metrics_on_respondents"]
    scored = score(ws.root, as_of=shared.scored.as_of, model=model)
    assert scored.base["nps"] == pytest.approx(shared.scored.base["nps"], abs=0.01)
    a, b = shared.scored.scores.sort_by("subscriber_id"), scored.scores.sort_by("subscriber_id")
    assert pc.max(pc.abs(pc.subtract(a["p_detractor"], b["p_detractor"]))).as_py() < 1e-4


def test_a_site_that_sent_no_pm_is_found_and_named_coverage(shared, foreign):
    """The foreign export has no PM rows for a site while it is off air: each such outage becomes an episode
    named coverage, with the site's cells and the missing PM as its evidence."""
    root, _, _ = foreign
    episodes = diagnose(root / "ws").episodes.to_pylist()
    with Workspace(root / "ws").session(tables=("cells",)) as engine:
        faults = [f for f in load_faults(shared.data / "truth", engine.table_arrow("cells")) if f["cause"] == "coverage"]
    assert faults
    for f in faults:
        found = [e for e in episodes if _overlaps(e, f)]
        assert any(e["cause"] == "coverage" and e["evidence"].startswith("no PM from")
                   and set(e["cells"]) & set(f["cells"].split(";")) for e in found), (f, found)


def test_the_docs_show_the_whole_shipped_mapping():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "byod.md").read_text()
    assert MAPPING.read_text().rstrip("\n") in doc
