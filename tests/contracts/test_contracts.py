from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from opencem import contracts
from opencem.contracts.dictionary import to_markdown
from opencem.contracts.validate import ContractError, validate_file, validate_table

ROOT = Path(__file__).resolve().parents[2]


def test_every_column_has_type_unit_and_meaning():
    assert set(contracts.TABLES) == {"subscribers", "subscriber_contracts", "tariffs", "surveys", "survey_invitations", "nps_tracker",
                                     "care_contacts", "portouts", "cells", "pm", "radio_samples", "xdr"}
    for t in contracts.TABLES.values():
        assert len(t.arrow_schema) == len(t.columns)
        for c in t.columns:
            assert c.unit and len(c.description) > 5, (t.name, c.name)
        for k in t.key:
            assert k in t.column_names


def test_pm_uses_3gpp_counter_names():
    names = contracts.get("pm").column_names
    for counter in ("RRC.ConnEstabAtt", "RRC.ConnEstabSucc", "DRB.UEThpDl", "RRU.PrbUsedDl", "RRU.PrbAvailDl"):
        assert counter in names


def test_docs_data_dictionary_matches_code():
    assert (ROOT / "docs" / "data-dictionary.md").read_text() == to_markdown() + "\n"


def _xdr_rows(n=4):
    return {
        "session_id": [str(i) for i in range(n)], "subscriber_id": ["s1"] * n, "service": ["web"] * n,
        "start_time": ["2026-10-05 10:00:00"] * n, "end_time": ["2026-10-05 10:01:00"] * n,
        "cell_id": ["C1"] * n, "rat": ["LTE"] * n, "volume_dl_bytes": ["1000"] * n, "volume_ul_bytes": ["10"] * n,
        "success": ["true"] * n, "throughput_dl_kbps": ["5000"] * n, "rtt_ms": ["40"] * n,
        "page_load_ms": ["1500"] * n, **{c: [None] * n for c in (
            "initial_buffer_ms", "stall_count", "stall_ms", "video_bitrate_kbps", "video_resolution_p",
            "call_setup_ms", "call_dropped", "voice_delay_ms", "jitter_ms", "packet_loss_pct", "codec")},
    }


def test_bad_rows_are_quarantined_with_row_column_and_reason():
    rows = _xdr_rows(7)
    rows["rtt_ms"][1] = "abc"  # not a number
    rows["rat"][2] = "Wi-Fi"  # not a value of the closed vocabulary
    rows["volume_dl_bytes"][3] = "-5"  # below minimum
    rows["end_time"][4] = "2026-10-05 09:00:00"  # ends before it starts
    rows["subscriber_id"][5] = None  # required
    rows["session_id"][6] = "0"  # duplicate key of row 1
    r = validate_table(pa.table(rows), "xdr", "xdr.csv")
    assert r.valid.num_rows == 1 and r.valid["session_id"].to_pylist() == [0]
    got = {(q["row"], q["column"]): q["reason"] for q in r.quarantine.to_pylist()}
    assert got == {
        (2, "rtt_ms"): "not a valid float64",
        (3, "rat"): "not one of LTE, NR",
        (4, "volume_dl_bytes"): "below the minimum 0 byte",
        (5, "end_time"): "session ends before it starts",
        (6, "subscriber_id"): "missing value in a required column",
        (7, "session_id"): "duplicate key (session_id)",
    }
    assert r.messages()[0] == "xdr.csv row 2 column 'rtt_ms': not a valid float64 (value 'abc')"
    assert r.valid.schema == contracts.get("xdr").arrow_schema


def test_operator_values_of_an_open_vocabulary_are_kept_and_counted():
    """Care categories, services and codecs are the operator's own words: a row with one OpenCEM has no
    default meaning for is valid, and the value is counted; a plain string (the channel) is just kept."""
    rows = {"contact_id": ["1", "2", "3", "4"], "subscriber_id": ["s1"] * 4,
            "contact_time": ["2026-10-05 10:00:00"] * 4, "channel": ["call_centre", "WhatsApp", "WhatsApp", "shop"],
            "category": ["billing", "Roaming charges", "Roaming charges", "Network - no signal"],
            "is_complaint": ["true"] * 4, "resolved": ["false"] * 4}
    r = validate_table(pa.table(rows), "care_contacts", "care.csv")
    assert r.ok and r.valid.num_rows == 4
    assert r.unknown == {"category": {"Roaming charges": 2, "Network - no signal": 1}}
    assert r.warnings()[0] == ("care.csv column 'category': 2 value(s) outside OpenCEM's defaults, kept as the "
                                       "operator's own: 'Roaming charges' (2 rows), 'Network - no signal' (1 rows)")
    xdr = _xdr_rows(2)
    xdr["service"] = ["streaming", "web"]
    xdr["codec"] = ["EVS-SWB", None]
    r = validate_table(pa.table(xdr), "xdr", "xdr.csv")
    assert r.ok and r.unknown == {"service": {"streaming": 1}, "codec": {"EVS-SWB": 1}}


def test_missing_column_rejects_the_whole_file(tmp_path):
    rows = _xdr_rows()
    del rows["rtt_ms"]
    path = tmp_path / "xdr.csv"
    pacsv.write_csv(pa.table(rows), path)
    with pytest.raises(ContractError, match=r"xdr.csv: missing column\(s\) 'rtt_ms' required by xdr"):
        validate_file(path, "xdr")


def test_unreadable_file_is_rejected_with_its_name(tmp_path):
    path = tmp_path / "pm.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(ContractError, match="pm.parquet: cannot read as pm"):
        validate_file(path, "pm")


def test_csv_values_are_typed_on_the_way_in(tmp_path):
    path = tmp_path / "portouts.csv"
    path.write_text("subscriber_id,portout_date,recipient_operator\nA,2026-10-07,Zenit\nB,07/10/2026,Zenit\n")
    r = validate_file(path, "portouts")
    assert r.valid.column("portout_date").type == pa.date32()
    assert r.valid.num_rows == 1
    assert r.messages() == ["portouts.csv row 2 column 'portout_date': not a valid date (value '07/10/2026')"]


def test_several_files_validate_as_one_table_in_file_order(tmp_path):
    """A stream's messages of one table are checked in one scan: columns matched by name, rows in file
    order, and a key repeated across files is a duplicate, as in one file."""
    import pyarrow.parquet as pq

    a, b = _xdr_rows(3), _xdr_rows(2)
    b["session_id"] = ["7", "2"]  # "2" is also in the first file
    pq.write_table(pa.table(a), tmp_path / "a.parquet")
    pq.write_table(pa.table(dict(reversed(list(b.items())))), tmp_path / "b.parquet")  # the same columns, the other way round
    r = validate_file([tmp_path / "a.parquet", tmp_path / "b.parquet"], "xdr", "messages 1..2", write_to=tmp_path / "out.parquet")
    assert r.rows == 4 and pq.read_table(tmp_path / "out.parquet")["session_id"].to_pylist() == [0, 1, 2, 7]
    assert [(q["column"], q["reason"]) for q in r.quarantine.to_pylist()] == [("session_id", "duplicate key (session_id)")]
