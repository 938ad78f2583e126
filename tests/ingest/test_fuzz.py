"""Property-based robustness: malformed operator files never crash validate, import or ingest, and never lose
a row silently. Every row read is either valid or quarantined with its reason; a file that cannot be read
at all is rejected whole with a message naming it; what was stored before stays as it was."""

import csv
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from opencem import contracts
from opencem.contracts.validate import ContractError, read_raw, validate_file
from opencem.errors import InputError
from opencem.ingest.importer import REPORT_FOLDER, import_tables
from opencem.ingest.lake import ingest
from opencem.ingest.pm_xml import PmFileRejected

pytestmark = pytest.mark.slow  # ~25 s of generated files: in the whole suite (and CI), not the quick tier

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])

_GARBAGE = st.sampled_from(["", "NULL", "nan", "inf", "-inf", "1e309", "-0", "9" * 30, "3,5", "true", "ja", "é",
                            "2026-02-30 10:00:00", "2026-10-05T10:00:00+25:00", "10:00", "'", '"', "\\N", " 12 "])


def _cell(dtype: str, lo: float | None, hi: float | None):
    lo = -1e6 if lo is None else lo
    hi = 1e6 if hi is None else hi
    plausible = {
        "string": st.text(min_size=1, max_size=12),
        "int64": st.integers(int(max(lo, -1e6)), int(min(hi, 1e6))).map(str),
        "int32": st.integers(int(max(lo, -1e6)), int(min(hi, 1e6))).map(str),
        "float64": st.floats(max(lo, -1e6), min(hi, 1e6), allow_nan=False).map(repr),
        "bool": st.sampled_from(["true", "false", "1", "0"]),
        "timestamp": st.datetimes().map(lambda d: d.isoformat(sep=" ")),
        "date": st.dates().map(str),
    }[dtype]
    return plausible


@st.composite
def operator_file(draw, table: str) -> bytes:
    """A CSV of the table with plausible and impossible values, missing cells, duplicated rows, a dropped
    column, and, sometimes, a cut in the middle or bytes that are not UTF-8."""
    contract = contracts.get(table)
    columns = [c for c in contract.columns if not (c.optional and draw(st.booleans()))]
    if draw(st.integers(0, 9)) == 0:  # a required column missing
        columns = columns[1:]
    rows = [list(r) for r in draw(st.lists(st.tuples(*[_cell(c.dtype, c.min, c.max) for c in columns]), max_size=12))]
    for r in rows:  # most rows get one or two impossible, missing or odd values
        for i in draw(st.lists(st.integers(0, len(columns) - 1), max_size=2)):
            r[i] = draw(st.one_of(_GARBAGE, st.none()))
    if rows and draw(st.booleans()):
        rows.append(rows[0])  # a duplicated key
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([c.name for c in columns])
    w.writerows([["" if v is None else v for v in r] for r in rows])
    data = buf.getvalue().encode()
    damage = draw(st.sampled_from(["none"] * 5 + ["cut", "bytes", "ragged"]))
    if damage == "cut" and len(data) > 2:
        data = data[: draw(st.integers(1, len(data) - 1))]
    elif damage == "bytes":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + b"\xff\xfe\xc3" + data[at:]
    elif damage == "ragged":
        data += b"1,2\n"
    return data


def _accounted(res, rows_read: int) -> None:
    q = res.quarantine.to_pylist()
    assert all(r["reason"] and r["column"] and 1 <= r["row"] <= rows_read for r in q), q
    assert res.valid.num_rows + len({r["row"] for r in q}) == rows_read
    for f in res.valid.schema:  # what is kept is usable: no NaN or infinity reaches an average
        if pa.types.is_floating(f.type):
            assert pc.all(pc.is_finite(res.valid[f.name])).as_py() in (True, None), f.name
    event(f"{'some' if res.valid.num_rows else 'no'} valid rows, {'some' if q else 'no'} quarantined")


TABLES = ["xdr", "care_contacts", "pm", "cells", "subscribers"]


@pytest.mark.parametrize("table", TABLES)
@FUZZ
@given(data=st.data())
def test_validate_never_crashes_nor_drops_a_row(tmp_path, table, data):
    path = tmp_path / f"{table}.csv"
    path.write_bytes(data.draw(operator_file(table)))
    contract = contracts.get(table)
    try:
        res = validate_file(path, contract)
    except ContractError as e:
        assert path.name in str(e) and "\n" not in str(e)
        event("file rejected whole")
        return
    _accounted(res, read_raw(path, contract).num_rows)


@pytest.mark.parametrize("table", ["xdr", "care_contacts"])
@FUZZ
@given(data=st.data())
def test_import_never_crashes_nor_drops_a_row(tmp_path, table, data):
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "export.csv").write_bytes(data.draw(operator_file(table)))
    (tmp_path / "map.yaml").write_text(f"timezone: Europe/Lisbon\ntables:\n  {table}:\n    files: export.csv\n")
    out = tmp_path / "out"
    [res] = import_tables(src, tmp_path / "map.yaml", out)
    if res.rejected:
        assert (out / REPORT_FOLDER / "rejected" / "export.csv").exists() and "export.csv" in res.rejected[0]
        return
    q = pq.read_table(out / REPORT_FOLDER / "quarantine.parquet")
    read = read_raw(src / "export.csv", contracts.get(table)).num_rows
    assert res.rows + len(set(q["row"].to_pylist())) == read


_PM = (b'<?xml version="1.0"?><measCollecFile xmlns="http://www.3gpp.org/ftp/specs/archive/32_series/32.435#measCollec">'
       b'<fileHeader fileFormatVersion="32.435 V10.0"><fileSender localDn="ME1"/><measCollec beginTime="2026-10-05T10:00:00Z"/>'
       b'</fileHeader><measData><managedElement localDn="ME1"/><measInfo><granPeriod duration="PT15M" '
       b'endTime="2026-10-05T10:15:00Z"/><measTypes>a b</measTypes><measValue measObjLdn="X=1,Cell=C1">'
       b'<measResults>1 2</measResults></measValue></measInfo></measData><fileFooter><measCollec '
       b'endTime="2026-10-05T10:15:00Z"/></fileFooter></measCollecFile>')


@FUZZ
@given(cut=st.integers(0, len(_PM)), junk=st.binary(max_size=8))
def test_broken_pm_xml_is_rejected_whole_not_crashed_on(tmp_path, cut, junk):
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "A1.xml").write_bytes(_PM[:cut] + junk + _PM[cut:] if junk else _PM[:cut])
    (tmp_path / "map.yaml").write_text("tables:\n  pm:\n    files: '*.xml'\n")
    [res] = import_tables(src, tmp_path / "map.yaml", tmp_path / "out")
    assert res.rows == 0  # the PM contract's counters are not in this file: kept aside whole, with the reason
    assert len(res.rejected) == 1 and "A1.xml" in res.rejected[0]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_ingest_of_a_bad_extract_keeps_the_stored_lake_or_accounts_for_every_row(tmp_path, data):
    """A lake is ingested from good files; then an extract with a malformed xdr file is ingested into the same
    workspace: either it fails with a clear error and the old lake is untouched, or every row is in the new
    lake or its quarantine."""
    inputs, ws = tmp_path / "in", tmp_path / "ws"
    inputs.mkdir(exist_ok=True)
    (inputs / "subscribers.csv").write_text("subscriber_id,plan,arpu_monthly,tenure_months,device_model,device_vendor,"
                                            "device_capability,home_area,age_band,consent_location,consent_preferences,"
                                            "consent_marketing\nA,p,10,3,m,v,5G,h,25-34,true,false,true\n")
    (inputs / "xdr.csv").write_text(",".join(contracts.get("xdr").column_names) + "\n")
    ingest(inputs, ws, b"k" * 32)
    before = {p: p.read_bytes() for p in sorted((ws / "lake").rglob("*.parquet"))}
    (inputs / "xdr.csv").write_bytes(data.draw(operator_file("xdr")))
    try:
        report = ingest(inputs, ws, b"k" * 32)
    except (InputError, FileNotFoundError, PmFileRejected) as e:
        assert "\n" not in str(e)
        assert {p: p.read_bytes() for p in sorted((ws / "lake").rglob("*.parquet"))} == before
        return
    if report.rejected:
        assert (ws / "rejected" / "xdr.csv").exists()  # aside under its path in the inputs
        return
    read = read_raw(inputs / "xdr.csv", contracts.get("xdr")).num_rows
    assert report.rows.get("xdr", 0) + _distinct_quarantined(ws, "xdr") == read


def _distinct_quarantined(ws: Path, table: str) -> int:
    q = ws / "quarantine" / f"{table}.parquet"
    return len(set(pq.read_table(q)["row"].to_pylist())) if q.exists() else 0
