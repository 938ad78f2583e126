"""Tests for the 3GPP PM XML reader (opencem.ingest.pm_xml) and the helpers in pm_xml_helpers."""

from __future__ import annotations

import gzip
import math
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.pm_xml_helpers import ingest_pm_xml, pivot_counters, pm_warnings
from opencem.ingest.pm_xml import (
    META_UNPARSEABLE,
    SCHEMA,
    PmFileRejected,
    parse_datetime_ms,
    parse_duration_s,
    read_pm_xml,
)

SPECS = Path(__file__).resolve().parents[2].parent / "shared" / "specs" / "3gpp"
SAMPLES = SPECS / "samples"
INVALID = "invalid_nr_no_measured_entity_test.xml"
SAMPLE_A = "A20181002.0000-1000-0015-1000_5G.xml"
SAMPLE_C = "C20190328.0000-0015.xml"
SAMPLE_NR = "new_radio_PM202007171301+020024C202007171207+0200-1215+0200_45678.xml"

needs_samples = pytest.mark.skipif(
    not SAMPLES.is_dir(),
    reason=f"3GPP PM samples not found at ../shared/specs/3gpp/samples (looked in {SAMPLES})",
)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def rows(table: pa.Table) -> list[dict]:
    return table.to_pylist()


def value_of(table: pa.Table, ldn: str, counter: str, meas_info_id=..., array_index=None):
    found = [
        r
        for r in rows(table)
        if r["meas_obj_ldn"] == ldn
        and r["counter"] == counter
        and r["array_index"] == array_index
        and (meas_info_id is ... or r["meas_info_id"] == meas_info_id)
    ]
    assert len(found) == 1, found
    return found[0]


NS_435 = "http://www.3gpp.org/ftp/specs/archive/32_series/32.435#measCollec"


def collec(meas_data: str, ns: str = NS_435, sender: str = 'localDn="ME-1"') -> str:
    """A minimal measCollecFile around the given <measData> block(s)."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<measCollecFile xmlns="{ns}">
  <fileHeader fileFormatVersion="32.435 V10.0" vendorName="Test">
    <fileSender {sender}/>
    <measCollec beginTime="2024-05-01T10:00:00+02:00"/>
  </fileHeader>
{meas_data}
  <fileFooter><measCollec endTime="2024-05-01T10:15:00+02:00"/></fileFooter>
</measCollecFile>
"""


def one_info(body: str, gran: str = '<granPeriod duration="PT15M" endTime="2024-05-01T10:15:00+02:00"/>') -> str:
    return f"""  <measData>
    <managedElement localDn="ME-1"/>
    <measInfo measInfoId="cell">
      <job jobId="7"/>
      {gran}
      {body}
    </measInfo>
  </measData>"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# ---------------------------------------------------------------------------------------------
# Samples


@needs_samples
def test_every_sample_parses_except_the_invalid_one():
    names = sorted(p.name for p in SAMPLES.iterdir() if p.suffix == ".xml")
    assert INVALID in names and len(names) >= 6
    for name in names:
        if name == INVALID:
            continue
        t = read_pm_xml(SAMPLES / name)
        assert t.num_rows > 0, name
        assert t.schema.remove_metadata() == SCHEMA
        assert set(t.column("source_file").to_pylist()) == {name}
        assert pm_warnings(t) == (0, [])


@needs_samples
def test_invalid_sample_is_rejected_naming_the_file():
    with pytest.raises(PmFileRejected) as exc:
        read_pm_xml(SAMPLES / INVALID)
    msg = str(exc.value)
    assert msg.startswith(INVALID + ": ")
    assert "measEntity" in msg and "line 9" in msg
    assert exc.value.source_file == INVALID and exc.value.line == 9
    assert isinstance(exc.value, ValueError)
    assert "\n" not in msg


@needs_samples
def test_sample_type_a_per_counter_form_several_meas_info_suspect_and_array():
    t = read_pm_xml(SAMPLES / SAMPLE_A)
    # 3 measInfo blocks: 2 x (3 cells x 4 counters) + 3 scalars + one 9-element array.
    assert t.num_rows == 36
    assert set(t.column("file_format").to_pylist()) == {"32.435"}
    me = "SubNetwork=CountryNN,MeContext=MEC-Gbg-1,ManagedElement=RNC-Gbg-1"
    assert set(t.column("managed_element").to_pylist()) == {me}
    assert set(t.column("sender_name").to_pylist()) == {me}
    assert set(t.column("job_id").to_pylist()) == {"1231", "1232", "1233"}
    assert set(t.column("meas_info_id").to_pylist()) == {None, "ENodeBFunction"}

    r = value_of(t, "RncFunction=RF-1,UtranCell=Gbg-997", "attTCHSeizures")
    assert r["value"] == 234.0 and r["suspect"] is False and r["job_id"] == "1231"
    assert r["granularity_s"] == 900
    # endTime 2000-03-01T14:14:30+02:00 -> 12:14:30 UTC; start = end - 900 s
    assert r["period_end"] == utc(2000, 3, 1, 12, 14, 30)
    assert r["period_start"] == utc(2000, 3, 1, 11, 59, 30)
    assert value_of(t, "RncFunction=RF-1,UtranCell=Gbg-998", "succImmediateAssignProcs")["value"] == 234.0
    assert value_of(t, "RncFunction=RF-1,UtranCell=Gbg-998", "succImmediateAssignProcs8")["value"] == 238.0

    # <suspect>true</suspect> on Gbg-999 in both blocks
    r = value_of(t, "RncFunction=RF-1,UtranCell=Gbg-999", "attImmediateAssignProcs")
    assert r["value"] == 678.0 and r["suspect"] is True
    r = value_of(t, "RncFunction=RF-1,UtranCell=Gbg-999", "succImmediateAssignProcs8")
    assert r["value"] == 785.0 and r["suspect"] is True

    # 86,87,2,6,77,96,75,33,24 -> nine rows with array_index 0..8
    ldn = "ManagedElement=RNC-Gbg-1,ENodeBFunction=1"
    arr = sorted(
        (r["array_index"], r["value"]) for r in rows(t) if r["meas_obj_ldn"] == ldn and r["counter"] == "succTCHSeizures2"
    )
    assert arr == list(enumerate([86.0, 87.0, 2.0, 6.0, 77.0, 96.0, 75.0, 33.0, 24.0]))
    r = value_of(t, ldn, "attTCHSeizures1")
    assert r["value"] == 4.0 and r["array_index"] is None and r["meas_info_id"] == "ENodeBFunction"


@needs_samples
def test_sample_type_c_list_form_several_meas_data():
    t = read_pm_xml(SAMPLES / SAMPLE_C)
    assert t.num_rows == 12
    got = {(r["managed_element"], r["counter"]): r for r in rows(t)}
    assert got[("Dublin1", "zz1")]["value"] == 111.0
    assert got[("Dublin2", "b2")]["value"] == 2222.0
    assert got[("Dublin3", "a3")]["value"] == 33.0
    r = got[("Dublin2", "a2")]
    assert r["meas_info_id"] == "measInfoId2" and r["granularity_s"] == 200
    assert r["period_end"] == utc(2002, 10, 2, 12, 15)
    assert r["period_start"] == utc(2002, 10, 2, 12, 11, 40)
    assert got[("Dublin3", "z3")]["granularity_s"] == 300
    assert {r["sender_name"] for r in rows(t)} == {"Dublin"}


@needs_samples
@pytest.mark.parametrize(
    "name,fmt", [("32.435_meas_results_test.xml", "32.435"), ("28.532_meas_results_test.xml", "28.532")]
)
def test_sample_list_form_both_formats(name, fmt):
    t = read_pm_xml(SAMPLES / name)
    assert [(r["counter"], r["value"]) for r in rows(t)] == [("a", 76.0), ("b", 27.0), ("c", 98.0)]
    r = rows(t)[0]
    assert r["file_format"] == fmt
    assert r["sender_name"] == "Dublin" and r["managed_element"] == "Dublin"
    assert r["meas_info_id"] == "some measInfoId" and r["job_id"] == "jobId"
    assert r["period_start"] == utc(2018, 10, 2, 12, 0) and r["period_end"] == utc(2018, 10, 2, 12, 15)
    assert r["suspect"] is False and r["array_index"] is None


@needs_samples
def test_sample_28532_measdatafile_per_counter_form():
    t = read_pm_xml(SAMPLES / SAMPLE_NR)
    assert t.num_rows == 36
    assert set(t.column("file_format").to_pylist()) == {"28.532"}
    r = value_of(t, "RncFunction=RF-1,UtranCell=Gbg-998", "attTCHSeizures")
    assert r["value"] == 890.0
    assert r["managed_element"] == "SubNetwork=CountryNN,MeContext=MEC-Gbg-1,ManagedElement=RNC-Gbg-1"
    assert r["sender_name"] == "SubNetwork=CountryNN,MeContext=MEC-Gbg-1,ManagedElement=RNC-Gbg-1"
    assert value_of(t, "RncFunction=RF-1,UtranCell=Gbg-999", "attTCHSeizures5")["suspect"] is True
    arr = value_of(t, "ManagedElement=RNC-Gbg-1,ENodeBFunction=1", "succTCHSeizures2", array_index=8)
    assert arr["value"] == 24.0


# ---------------------------------------------------------------------------------------------
# Synthetic cases


def test_nil_suspect_array_and_offset(tmp_path):
    xml = collec(
        one_info(
            """<measType p="1">RRC.ConnEstabAtt</measType>
      <measType p="2">RRC.ConnEstabSucc</measType>
      <measType p="3">VS.PrbHist</measType>
      <measValue measObjLdn="NRCellDU=1">
        <r p="1">NIL</r><r p="2">12</r><r p="3">0,5,NIL,7</r>
        <suspect>true</suspect>
      </measValue>
      <measValue measObjLdn="NRCellDU=2">
        <r p="1">1.5e2</r><r p="2"> 99 </r><r p="3">3</r>
      </measValue>""",
            gran='<granPeriod duration="PT15M" endTime="2024-05-01T10:15:00+02:00"/>',
        )
    )
    t = read_pm_xml(write(tmp_path, "A20240501.0800+0200-0815+0200_ME-1.xml", xml))
    assert pm_warnings(t) == (0, [])  # NIL is a legal null, not a warning
    r = value_of(t, "NRCellDU=1", "RRC.ConnEstabAtt")
    assert r["value"] is None and r["suspect"] is True
    assert r["period_end"] == utc(2024, 5, 1, 8, 15) and r["period_start"] == utc(2024, 5, 1, 8, 0)
    assert r["granularity_s"] == 900 and r["job_id"] == "7" and r["meas_info_id"] == "cell"
    assert value_of(t, "NRCellDU=1", "RRC.ConnEstabSucc")["value"] == 12.0
    hist = sorted(
        (r["array_index"], r["value"]) for r in rows(t) if r["meas_obj_ldn"] == "NRCellDU=1" and r["counter"] == "VS.PrbHist"
    )
    assert hist == [(0, 0.0), (1, 5.0), (2, None), (3, 7.0)]
    # not an array: scalar with null array_index
    r = value_of(t, "NRCellDU=2", "VS.PrbHist")
    assert r["value"] == 3.0 and r["suspect"] is False
    assert value_of(t, "NRCellDU=2", "RRC.ConnEstabAtt")["value"] == 150.0
    assert value_of(t, "NRCellDU=2", "RRC.ConnEstabSucc")["value"] == 99.0


def test_list_form_with_arrays_nil_and_other_namespace(tmp_path):
    xml = collec(
        one_info(
            """<measTypes>c1 c2 c3</measTypes>
      <measValue measObjLdn="Cell=9"><measResults>NIL 1,2,3 -4.5</measResults><suspect>1</suspect></measValue>""",
        ),
        ns="urn:some-vendor:pm",
    )
    t = read_pm_xml(write(tmp_path, "C.xml", xml))
    assert [(r["counter"], r["array_index"], r["value"], r["suspect"]) for r in rows(t)] == [
        ("c1", None, None, True),
        ("c2", 0, 1.0, True),
        ("c2", 1, 2.0, True),
        ("c2", 2, 3.0, True),
        ("c3", None, -4.5, True),
    ]


def test_no_namespace_and_several_meas_info_optional_ids(tmp_path):
    md = """  <measData>
    <managedElement userLabel="gNB Label"/>
    <measInfo>
      <granPeriod duration="PT300S" endTime="2024-05-01T08:05:00Z"/>
      <measType p="1">x</measType>
      <measValue measObjLdn="L1"><r p="1">1</r></measValue>
    </measInfo>
    <measInfo measInfoId="second">
      <granPeriod duration="PT1H" endTime="2024-05-01T09:00:00Z"/>
      <measTypes>y</measTypes>
      <measValue measObjLdn="L1"><measResults>2</measResults></measValue>
    </measInfo>
  </measData>"""
    xml = collec(md).replace(f' xmlns="{NS_435}"', "")
    t = read_pm_xml(write(tmp_path, "n.xml", xml))
    got = rows(t)
    assert [(r["meas_info_id"], r["job_id"], r["counter"], r["value"], r["granularity_s"]) for r in got] == [
        (None, None, "x", 1.0, 300),
        ("second", None, "y", 2.0, 3600),
    ]
    assert got[1]["period_start"] == utc(2024, 5, 1, 8, 0)
    assert got[0]["managed_element"] == "gNB Label"  # falls back to userLabel without localDn


def test_unparseable_values_become_null_and_are_counted(tmp_path):
    xml = collec(
        one_info(
            """<measTypes>a b c d</measTypes>
      <measValue measObjLdn="X"><measResults>abc 1,zz,3 INF 1_000</measResults></measValue>""",
        )
    )
    t = read_pm_xml(write(tmp_path, "u.xml", xml))
    assert [r["value"] for r in rows(t)] == [None, 1.0, None, 3.0, None, None]
    count, warnings = pm_warnings(t)
    assert count == 4
    assert t.schema.metadata[META_UNPARSEABLE] == b"4"
    assert any("'abc'" in w and "a @ X" in w for w in warnings)


def test_time_without_offset_is_utc_with_warning(tmp_path):
    xml = collec(
        one_info(
            '<measTypes>a</measTypes><measValue measObjLdn="X"><measResults>1</measResults></measValue>',
            gran='<granPeriod duration="PT15M" endTime="2024-05-01T10:15:00"/>',
        )
    )
    t = read_pm_xml(write(tmp_path, "t.xml", xml))
    assert rows(t)[0]["period_end"] == utc(2024, 5, 1, 10, 15)
    count, warnings = pm_warnings(t)
    assert count == 0 and len(warnings) == 1 and "no UTC offset" in warnings[0]


def test_gzip_input(tmp_path):
    xml = collec(one_info('<measTypes>a</measTypes><measValue measObjLdn="X"><measResults>5</measResults></measValue>'))
    p = tmp_path / "A.xml.gz"
    p.write_bytes(gzip.compress(xml.encode()))
    assert rows(read_pm_xml(p))[0]["value"] == 5.0


@pytest.mark.parametrize(
    "body,needle",
    [
        ('<measType p="1">a</measType><measValue><r p="1">1</r></measValue>', "measValue without measObjLdn"),
        ('<measType p="1">a</measType><measValue measObjLdn="X"><r p="2">1</r></measValue>', "no measType p=2"),
        ('<measTypes>a b</measTypes><measValue measObjLdn="X"><measResults>1</measResults></measValue>', "1 values but"),
        ('<measType p="1">a</measType><measType p="1">b</measType>', "duplicate measType p=1"),
        ('<measType p="1">a</measType><measValue measObjLdn="X"><r p="1">1</r><r p="1">2</r></measValue>', "duplicate <r p=1>"),
        ('<measType p="1">a</measType>', "no measurement values"),
    ],
)
def test_structural_errors_reject_the_whole_file(tmp_path, body, needle):
    # a good measInfo first: the file is still rejected whole
    good = '<measInfo><granPeriod duration="PT15M" endTime="2024-05-01T10:15:00Z"/><measTypes>g</measTypes><measValue measObjLdn="G"><measResults>1</measResults></measValue></measInfo>'
    if needle == "no measurement values":
        good = ""
    md = one_info(body).replace("<managedElement localDn=\"ME-1\"/>", '<managedElement localDn="ME-1"/>' + good)
    p = write(tmp_path, "bad.xml", collec(md))
    with pytest.raises(PmFileRejected) as exc:
        read_pm_xml(p)
    assert str(exc.value).startswith("bad.xml: ")
    assert needle in str(exc.value)


@pytest.mark.parametrize(
    "gran,needle",
    [
        ('<granPeriod duration="some duration" endTime="2024-05-01T10:15:00Z"/>', "granPeriod duration"),
        ('<granPeriod duration="PT15M" endTime="yesterday"/>', "granPeriod endTime"),
        ('<granPeriod duration="PT15M"/>', "granPeriod endTime"),
        ("", "without granPeriod"),
    ],
)
def test_bad_gran_period_rejects(tmp_path, gran, needle):
    xml = collec(one_info('<measTypes>a</measTypes><measValue measObjLdn="X"><measResults>1</measResults></measValue>', gran=gran))
    with pytest.raises(PmFileRejected, match=needle):
        read_pm_xml(write(tmp_path, "g.xml", xml))


def test_not_a_pm_file_and_not_xml(tmp_path):
    with pytest.raises(PmFileRejected, match=r"x\.xml: line 1: root element <foo>"):
        read_pm_xml(write(tmp_path, "x.xml", "<foo/>"))
    with pytest.raises(PmFileRejected, match=r"e\.xml: .*not well-formed XML"):
        read_pm_xml(write(tmp_path, "e.xml", ""))


@needs_samples
def test_truncated_file_rejected_with_line(tmp_path):
    text = (SAMPLES / SAMPLE_A).read_text(encoding="utf-8")
    p = write(tmp_path, "A_truncated.xml", text[: len(text) // 2])
    with pytest.raises(PmFileRejected) as exc:
        read_pm_xml(p)
    assert str(exc.value).startswith("A_truncated.xml: line ")
    assert "not well-formed XML" in str(exc.value)
    assert exc.value.line and exc.value.line > 1


# ---------------------------------------------------------------------------------------------
# Durations and times


@pytest.mark.parametrize(
    "text,seconds",
    [("PT900S", 900), ("PT15M", 900), ("PT5M", 300), ("PT1H", 3600), ("P1D", 86400), ("PT1H30M", 5400), ("P0DT0H15M0S", 900), ("PT60.0S", 60)],
)
def test_parse_duration(text, seconds):
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "P", "PT", "900", "some duration", "-PT15M", "PT0S", "P1M", "P1Y", "PT1.5S", "PT15m"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError):
        parse_duration_s(text)


def test_parse_datetime_offsets():
    base = int(utc(2024, 5, 1, 8, 15).timestamp() * 1000)
    assert parse_datetime_ms("2024-05-01T10:15:00+02:00") == (base, True)
    assert parse_datetime_ms("2024-05-01T10:15:00+0200") == (base, True)
    assert parse_datetime_ms("2024-05-01T08:15:00Z") == (base, True)
    assert parse_datetime_ms("2024-05-01T03:15:00-05:00") == (base, True)
    assert parse_datetime_ms("2024-05-01T08:15:00.1234567Z") == (base + 123, True)
    assert parse_datetime_ms("2024-05-01T08:15:00") == (base, False)
    with pytest.raises(ValueError):
        parse_datetime_ms("2024-05-01 08:15")


# ---------------------------------------------------------------------------------------------
# Batch ingestion


@needs_samples
def test_ingest_writes_good_rejects_bad_and_rerun_is_identical(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in (SAMPLE_A, SAMPLE_C, INVALID):
        shutil.copy(SAMPLES / name, inputs / name)
    text = (SAMPLES / SAMPLE_A).read_text(encoding="utf-8")
    write(inputs, "A_truncated.xml", text[:700])
    paths = sorted(inputs.iterdir())
    out, rej = tmp_path / "out", tmp_path / "rejected"

    res = ingest_pm_xml(paths, out, rej)
    assert res == {"files_ok": 2, "files_rejected": 2, "rows": 36 + 12}
    assert sorted(p.name for p in out.iterdir()) == sorted([SAMPLE_A + ".parquet", SAMPLE_C + ".parquet"])
    assert sorted(p.name for p in rej.iterdir()) == sorted(
        ["A_truncated.xml", "A_truncated.xml.reason.txt", INVALID, INVALID + ".reason.txt"]
    )
    assert (rej / "A_truncated.xml").read_bytes() == (inputs / "A_truncated.xml").read_bytes()
    reason = (rej / "A_truncated.xml.reason.txt").read_text(encoding="utf-8")
    assert reason.count("\n") == 1 and reason.startswith("A_truncated.xml: line ")
    assert "not well-formed XML" in reason
    assert "measEntity" in (rej / (INVALID + ".reason.txt")).read_text(encoding="utf-8")

    back = pq.read_table(out / (SAMPLE_A + ".parquet"))
    assert back.equals(read_pm_xml(inputs / SAMPLE_A))
    assert pm_warnings(back) == (0, [])

    before = {p.name: p.read_bytes() for p in [*out.iterdir(), *rej.iterdir()]}
    assert ingest_pm_xml(paths, out, rej) == res
    after = {p.name: p.read_bytes() for p in [*out.iterdir(), *rej.iterdir()]}
    assert after == before  # byte-identical, no temporary files left behind


def test_ingest_accepting_a_fixed_file_clears_its_old_rejection(tmp_path):
    p = write(tmp_path, "f.xml", "<measCollecFile>")
    out, rej = tmp_path / "out", tmp_path / "rej"
    assert ingest_pm_xml([p], out, rej) == {"files_ok": 0, "files_rejected": 1, "rows": 0}
    assert (rej / "f.xml.reason.txt").exists() and not list(out.iterdir())
    write(tmp_path, "f.xml", collec(one_info('<measTypes>a</measTypes><measValue measObjLdn="X"><measResults>1</measResults></measValue>')))
    assert ingest_pm_xml([p], out, rej) == {"files_ok": 1, "files_rejected": 0, "rows": 1}
    assert not list(rej.iterdir())
    assert [q.name for q in out.iterdir()] == ["f.xml.parquet"]


def test_ingest_duplicate_names_write_nothing(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    p1 = write(tmp_path / "a", "same.xml", "<x/>")
    p2 = write(tmp_path / "b", "same.xml", "<x/>")
    with pytest.raises(ValueError, match="unique"):
        ingest_pm_xml([p1, p2], tmp_path / "out", tmp_path / "rej")
    assert not (tmp_path / "out").exists() and not (tmp_path / "rej").exists()


# ---------------------------------------------------------------------------------------------
# Pivot


def test_pivot_counters_sums_arrays_and_keeps_scalars(tmp_path):
    xml = collec(
        one_info(
            """<measTypes>RRC.ConnEstabAtt RRC.ConnEstabSucc RRU.PrbUsedDl VS.Other</measTypes>
      <measValue measObjLdn="NRCellDU=1"><measResults>10 9 1,2,3 5</measResults></measValue>
      <measValue measObjLdn="NRCellDU=2"><measResults>NIL 4 1,NIL 5</measResults><suspect>true</suspect></measValue>
      <measValue measObjLdn="Other=1"><measResults>NIL NIL NIL 5</measResults></measValue>""",
        )
    )
    long = read_pm_xml(write(tmp_path, "p.xml", xml))
    wide = pivot_counters(long, ["RRC.ConnEstabAtt", "RRC.ConnEstabSucc", "RRU.PrbUsedDl", "DRB.UEThpDl"])
    assert wide.column_names == [
        "meas_obj_ldn", "period_start", "granularity_s",
        "RRC.ConnEstabAtt", "RRC.ConnEstabSucc", "RRU.PrbUsedDl", "DRB.UEThpDl", "suspect",
    ]
    assert wide.schema.field("period_start").type == pa.timestamp("ms", tz="UTC")
    assert wide.schema.field("granularity_s").type == pa.int32()
    got = wide.to_pylist()
    assert [r["meas_obj_ldn"] for r in got] == ["NRCellDU=1", "NRCellDU=2", "Other=1"]
    one, two, other = got
    assert one["period_start"] == utc(2024, 5, 1, 8, 0) and one["granularity_s"] == 900
    assert (one["RRC.ConnEstabAtt"], one["RRC.ConnEstabSucc"], one["RRU.PrbUsedDl"]) == (10.0, 9.0, 6.0)
    assert one["DRB.UEThpDl"] is None and one["suspect"] is False
    # NIL scalar -> null; an array with a NIL element sums to null, not to a partial sum
    assert two["RRC.ConnEstabAtt"] is None and two["RRC.ConnEstabSucc"] == 4.0 and two["RRU.PrbUsedDl"] is None
    assert two["suspect"] is True
    assert other["RRC.ConnEstabAtt"] is None


@needs_samples
def test_pivot_on_sample_and_duplicate_detection():
    long = read_pm_xml(SAMPLES / SAMPLE_A)
    wide = pivot_counters(long, ["attTCHSeizures", "succTCHSeizures2", "attTCHSeizures5"])
    got = {r["meas_obj_ldn"]: r for r in wide.to_pylist()}
    assert got["RncFunction=RF-1,UtranCell=Gbg-997"]["attTCHSeizures"] == 234.0
    assert got["RncFunction=RF-1,UtranCell=Gbg-997"]["attTCHSeizures5"] == 238.0
    assert got["ManagedElement=RNC-Gbg-1,ENodeBFunction=1"]["succTCHSeizures2"] == 486.0  # sum of 9 elements
    assert got["RncFunction=RF-1,UtranCell=Gbg-999"]["suspect"] is True
    assert wide.num_rows == 4
    twice = pa.concat_tables([long, long])
    with pytest.raises(ValueError, match="duplicate"):
        pivot_counters(twice, ["attTCHSeizures"])
    with pytest.raises(ValueError):
        pivot_counters(long, [])


def test_values_are_finite_floats(tmp_path):
    xml = collec(one_info('<measTypes>a</measTypes><measValue measObjLdn="X"><measResults>NaN</measResults></measValue>'))
    t = read_pm_xml(write(tmp_path, "nan.xml", xml))
    assert rows(t)[0]["value"] is None
    assert all(v is None or math.isfinite(v) for v in t.column("value").to_pylist())
