"""Another operator's own words load as they are: plan names, care categories, a service and a codec that
OpenCEM has never seen keep every row, are reported with their counts, and the stages run to the end; and
so do PM counters the operator does not have (no UL interference, no RRC.ConnMax, no handovers) and
cells without an antenna height."""

import shutil

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from opencem.measure.run import measure
from opencem.nps.score import score
from opencem.twin.whatif import whatif

PLANS = {"prepaid_basic": "Smart Go", "prepaid_plus": "Smart Go+", "postpaid_s": "Unlimited Start",
         "postpaid_m": "Unlimited Plus", "postpaid_l": "Unlimited Max", "business": "Pro Fleet"}
ABSENT_COUNTERS = ["VS.UlInterfAvg", "RRC.ConnMax", "DRB.SessionTime", "MM.HoExeIntraReq", "MM.HoExeIntraSucc"]
CATEGORIES = {"coverage": "Network - no signal", "data_speed": "Network - slow internet", "billing": "Invoice dispute",
              "price": "Roaming charges", "other": "General enquiry"}


def _rename(path, column: str, names: dict[str, str]) -> None:
    t = pq.read_table(path)
    values = t[column].to_pylist()
    t = t.set_column(t.schema.get_field_index(column), column,
                     pa.array([names.get(v, v) for v in values], t.schema.field(column).type))
    pq.write_table(t, path)


def test_an_operators_own_words_run_end_to_end(shared, tmp_path):
    data = tmp_path / "op" / "inputs"
    shutil.copytree(shared.data / "inputs", data)
    _rename(data / "subscribers.parquet", "plan", PLANS)
    _rename(data / "care_contacts.parquet", "category", CATEGORIES)
    for part in sorted((data / "xdr").rglob("*.parquet")):
        _rename(part, "codec", {"EVS": "EVS-SWB"})
        _rename(part, "service", {"social": "messaging"})
    for part in sorted((data / "pm").rglob("*.parquet")):
        pq.write_table(pq.read_table(part).drop_columns(ABSENT_COUNTERS), part)
    pq.write_table(pq.read_table(data / "cells.parquet").drop_columns(["height_m"]), data / "cells.parquet")

    ws = tmp_path / "ws"
    res = measure(data, ws)
    assert res.ingest.quarantined == {} and res.ingest.rejected == []
    warned = " ".join(res.ingest.warnings)
    for word in ("'Invoice dispute'", "'EVS-SWB'", "'messaging'"):
        assert word in warned
    assert "Smart Go" not in warned  # a plan is a plain name: nothing to map, nothing to warn about
    assert "no column 'RRC.ConnMax', 'DRB.SessionTime', 'MM.HoExeIntraReq', 'MM.HoExeIntraSucc', 'VS.UlInterfAvg'" in warned

    # what needs an absent counter is unavailable, never made up
    kpi = pq.read_table(ws / "measure" / "kpi_cell_15min")
    for col in ("ul_interference_dbm", "rrc_users_max", "ho_sr", "drb_abnormal_rel_per_hour"):
        assert kpi[col].null_count == kpi.num_rows
    assert kpi["prb_util_dl"].null_count < kpi.num_rows

    # every session is in the lake; the unknown service counts as usage, without a CEI of its own
    lake = pq.read_table(ws / "lake" / "xdr")
    assert lake.num_rows == pq.read_table(shared.data / "inputs" / "xdr").num_rows
    kqi = pq.read_table(ws / "measure" / "cei_service_day")
    messaging = kqi.filter(pc.equal(kqi["service"], "messaging"))
    assert messaging.num_rows > 0 and messaging["cei"].null_count == messaging.num_rows

    # training, scoring and diagnosing an imported operator with absent counters: tests/ingest/test_import.py;
    # here the what-if without the UL interference counter (it raises SINR alone; the model cannot fall)
    cells = pq.read_table(data / "cells.parquet")["cell_id"].to_pylist()[:3]
    span = pc.min_max(kpi["period_start"])
    start, end = span["min"].as_py().date(), span["max"].as_py().date()
    scored = score(ws, model=shared.model)  # plans it has not seen are unknown categories, not errors
    assert scored.scores.num_rows == shared.scored.scores.num_rows
    w = whatif(ws, "clear_interference", start, end, cells=cells, model=shared.model)
    assert w.sessions > 0 and w.nps_after >= w.nps_before - 1e-9
