"""Another operator's own words load as they are: plan names, care categories, a service and a codec that
OpenCEM has never seen keep every row, are reported with their counts, and the stages run to the end."""

import shutil

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from opencem.measure.run import measure
from opencem.nps.score import score
from opencem.nps.train import train_nps
from opencem.twin.run import diagnose

PLANS = {"prepaid_basic": "Smart Go", "prepaid_plus": "Smart Go+", "postpaid_s": "Unlimited Start",
         "postpaid_m": "Unlimited Plus", "postpaid_l": "Unlimited Max", "business": "Pro Fleet"}
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

    ws = tmp_path / "ws"
    res = measure(data, ws)
    assert res.ingest.quarantined == {} and res.ingest.rejected == []
    warned = " ".join(res.ingest.unknown)
    for word in ("'Invoice dispute'", "'EVS-SWB'", "'messaging'"):
        assert word in warned
    assert "Smart Go" not in warned  # a plan is a plain name: nothing to map, nothing to warn about

    # every session is in the lake; the unknown service counts as usage, without a CEI of its own
    lake = pq.read_table(ws / "lake" / "xdr")
    assert lake.num_rows == pq.read_table(shared.data / "inputs" / "xdr").num_rows
    kqi = pq.read_table(ws / "measure" / "cei_service_day")
    messaging = kqi.filter(pc.equal(kqi["service"], "messaging"))
    assert messaging.num_rows > 0 and messaging["cei"].null_count == messaging.num_rows

    model = train_nps(ws, replicas=2)
    assert {"Smart Go", "Pro Fleet"} <= set(model.encoder.vocab["plan"])
    scored = score(ws, model=model)
    assert scored.scores.num_rows == shared.scored.scores.num_rows
    assert diagnose(ws).episodes.num_rows > 0
