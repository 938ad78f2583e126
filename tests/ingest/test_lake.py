"""Ingest into the lake: validation, quarantine, whole-file rejection, keyed pseudonymisation."""

import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from opencem.engine import make_engine

from opencem.ingest.lake import ingest, streamed_file_name
from opencem.ingest.pseudonym import KEY_ENV, Pseudonymiser, load_key
from opencem.synth.generator import SynthConfig, generate

KEY = b"test-key-not-secret"


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    out = tmp_path_factory.mktemp("csvop") / "op"
    generate(out, SynthConfig(subscribers=400, days=3, fmt="csv"))
    return out


def _lake_rows(ws, name):
    return pq.read_table(ws / "lake" / name).num_rows


def test_ingest_keeps_every_row_and_pseudonymises_ids(operator, tmp_path):
    ws = tmp_path / "ws"
    rep = ingest(operator, ws, KEY)
    for name in ("subscribers", "xdr", "pm", "surveys"):
        assert rep.rows[name] == pq.read_table(operator / "inputs" / (name if name in ("xdr", "pm") else f"{name}.parquet")).num_rows
    assert not rep.quarantined and not rep.rejected
    subs = pq.read_table(ws / "lake" / "subscribers").column("subscriber_id").to_pylist()
    assert all(len(s) == 32 and not s.startswith("+") for s in subs)
    xdr_ids = set(pq.read_table(ws / "lake" / "xdr", columns=["subscriber_id"]).column("subscriber_id").to_pylist())
    assert xdr_ids <= set(subs)  # the same key maps the same person to the same pseudonym everywhere
    raw = pq.read_table(operator / "inputs" / "subscribers.parquet").column("subscriber_id")[0].as_py()
    assert Pseudonymiser(KEY).one(raw) in subs
    for f in (ws / "lake").rglob("*.parquet"):  # neither raw ids nor the key reach the lake
        data = f.read_bytes()
        assert KEY not in data and raw.encode() not in data


def test_reingest_gives_the_same_lake(operator, tmp_path):
    ws = tmp_path / "ws"
    ingest(operator, ws, KEY)
    first = {p.relative_to(ws): pq.read_table(p) for p in (ws / "lake").rglob("*.parquet")}
    ingest(operator, ws, KEY)
    second = {p.relative_to(ws): pq.read_table(p) for p in (ws / "lake").rglob("*.parquet")}
    assert first.keys() == second.keys()
    assert all(first[k].equals(second[k]) for k in first)


def test_a_full_reingest_keeps_the_streamed_records(operator, tmp_path):
    ws = tmp_path / "ws"
    ingest(operator, ws, KEY)
    day = sorted((ws / "lake" / "xdr").glob("day=*"))[-1]
    streamed = pq.read_table(next(day.glob("*.parquet"))).slice(0, 5)  # as `opencem stream` would add them
    pq.write_table(streamed, day / streamed_file_name(7))
    ingest(operator, ws, KEY)
    assert pq.read_table(day / streamed_file_name(7)).equals(streamed)
    assert _lake_rows(ws, "xdr") == pq.read_table(operator / "inputs" / "xdr").num_rows + 5


@pytest.mark.slow
def test_another_key_gives_other_pseudonyms(small_csv, tmp_path):
    ingest(small_csv, tmp_path / "a", b"key-a")
    ingest(small_csv, tmp_path / "b", b"key-b")
    a = set(pq.read_table(tmp_path / "a/lake/subscribers").column("subscriber_id").to_pylist())
    b = set(pq.read_table(tmp_path / "b/lake/subscribers").column("subscriber_id").to_pylist())
    assert len(a) == 400 and not a & b


@pytest.mark.slow
def test_bad_rows_are_quarantined_and_bad_files_rejected_whole(small_csv, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_csv / "inputs", data)
    # one bad row in the subscribers, one unreadable xDR day, one PM file missing a column
    lines = (data / "subscribers.csv").read_text().splitlines()
    head = lines[0].split(",")
    row = lines[5].split(",")
    row[head.index('"arpu_monthly"')] = "lots"
    lines[5] = ",".join(row)
    (data / "subscribers.csv").write_text("\n".join(lines) + "\n")
    bad_xdr = sorted((data / "xdr").rglob("*.csv"))[0]
    bad_xdr.write_bytes(b"\x00\x01 definitely not csv \xff\n\x00")
    pm_file = sorted((data / "pm").rglob("*.csv"))[0]
    pm_lines = [line.split(",") for line in pm_file.read_text().splitlines()]
    drop = pm_lines[0].index('"RRU.PrbUsedDl"')  # a required counter (an optional one may be absent)
    pm_file.write_text("\n".join(",".join(f[:drop] + f[drop + 1:]) for f in pm_lines) + "\n")

    ws = tmp_path / "ws"
    rep = ingest(data, ws, KEY)
    assert rep.rows["subscribers"] == 399 and rep.quarantined == {"subscribers": 1}
    q = pq.read_table(ws / "quarantine" / "subscribers.parquet").to_pylist()
    assert (q[0]["source_file"], q[0]["row"], q[0]["column"], q[0]["value"]) == ("subscribers.csv", 5, "arpu_monthly", "lots")
    assert len(rep.rejected) == 2
    assert any("missing column(s) 'RRU.PrbUsedDl'" in r for r in rep.rejected)
    aside = ws / "rejected" / pm_file.relative_to(data)  # under its path in the inputs, named by it
    assert aside.exists() and aside.with_name(f"{pm_file.name}.reason.txt").read_text().startswith(
        pm_file.relative_to(data).as_posix())
    assert (ws / "rejected" / bad_xdr.relative_to(data)).exists()
    assert not any(p.name == bad_xdr.with_suffix(".parquet").name and p.parent.name == bad_xdr.parent.name
                   for p in (ws / "lake" / "xdr").rglob("*.parquet"))


def test_the_pseudonym_in_sql_is_the_one_in_python():
    ids = ["+447700900123", "", "é-ü 中文", "x" * 300, "0"]
    for key in (KEY, b"k" * 100):  # a key longer than SHA-256's block is hashed first (RFC 2104)
        p = Pseudonymiser(key)
        sql, params = p.sql("id")
        with make_engine("duckdb") as eng:
            eng.register_arrow("ids", pa.table({"id": ids}))
            got = eng.query_arrow(f"SELECT {sql} AS p FROM ids", params)["p"].to_pylist()
        assert got == [p.one(i) for i in ids]
        assert key.hex() not in sql and "k" * 100 not in sql  # the key is a parameter, never SQL text


def test_a_parquet_files_bad_rows_are_quarantined_by_their_row_in_the_file(operator, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(operator / "inputs", data)
    day = sorted((data / "xdr").rglob("*.parquet"))[0]
    xdr = pq.read_table(day).to_pylist()
    xdr[2]["rtt_ms"] = -5.0  # below the minimum
    xdr[6]["session_id"] = xdr[3]["session_id"]  # a duplicate key
    pq.write_table(pa.Table.from_pylist(xdr, pq.read_schema(day)), day)
    broken = sorted((data / "xdr").rglob("*.parquet"))[1]
    broken.write_bytes(broken.read_bytes()[:-100])  # cut short: unreadable
    ws = tmp_path / "ws"
    rep = ingest(data, ws, KEY)
    q = pq.read_table(ws / "quarantine" / "xdr.parquet").to_pylist()
    assert [(r["row"], r["column"], r["value"]) for r in q] == [(3, "rtt_ms", "-5.0"), (7, "session_id", str(xdr[3]["session_id"]))]
    assert q[0]["source_file"] == day.relative_to(data).as_posix()
    kept = pq.read_table(ws / "lake" / day.relative_to(data))
    assert kept.num_rows == len(xdr) - 2 and kept["session_id"].to_pylist() == [
        r["session_id"] for i, r in enumerate(xdr) if i not in (2, 6)]  # in file order
    assert kept.schema.field("start_time").type == pa.timestamp("ms")
    assert len(rep.rejected) == 1 and broken.relative_to(data).as_posix() in rep.rejected[0]
    assert not (ws / "lake" / broken.relative_to(data)).exists()


@pytest.mark.slow
def test_a_failed_ingest_leaves_the_previous_lake(small_csv, tmp_path):
    ws = tmp_path / "ws"
    ingest(small_csv, ws, KEY)
    before = sorted(p.relative_to(ws) for p in (ws / "lake").rglob("*"))
    empty = tmp_path / "empty"
    (empty / "cells").mkdir(parents=True)
    shutil.copy(small_csv / "inputs" / "cells.csv", empty / "cells.csv")
    with pytest.raises(FileNotFoundError, match="required table 'subscribers' not found"):
        ingest(empty, ws, KEY)
    assert sorted(p.relative_to(ws) for p in (ws / "lake").rglob("*")) == before


def test_key_from_environment_or_file(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "from-env")
    assert load_key(tmp_path / "k") == b"from-env"
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(ValueError, match="no pseudonymisation key"):
        load_key(tmp_path / "k")
    made = load_key(tmp_path / "k", create=True)
    assert len(made) == 64 and load_key(tmp_path / "k") == made
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600


def test_a_workspace_refuses_a_second_key(tmp_path, monkeypatch):
    """A run with another key than the workspace's first would give every customer a second pseudonym."""
    key_file = tmp_path / "ws" / ".secrets" / "pseudonym.key"
    monkeypatch.setenv(KEY_ENV, "key-a")
    assert load_key(key_file, create=True) == b"key-a"  # the first run records the key's check value
    assert load_key(key_file) == b"key-a"
    monkeypatch.setenv(KEY_ENV, "key-b")
    with pytest.raises(ValueError, match="not the key this workspace was written with"):
        load_key(key_file, create=True)
    monkeypatch.delenv(KEY_ENV)  # the variable forgotten: no key file is made up
    with pytest.raises(ValueError, match="written with a key from it"):
        load_key(key_file, create=True)
    assert not key_file.exists() and "key-a" not in (tmp_path / "ws" / ".secrets" / "pseudonym.check").read_text()


@pytest.mark.slow
def test_pm_xml_files_enter_the_lake_and_the_invalid_one_is_kept_aside(small_csv, tmp_path):
    from pathlib import Path

    samples = Path(__file__).resolve().parents[2].parent / "shared" / "specs" / "3gpp" / "samples"
    if not samples.is_dir():
        pytest.skip(f"3GPP samples not present at {samples}")
    data = tmp_path / "data"
    shutil.copytree(small_csv / "inputs", data)
    shutil.copytree(samples, data / "pm_xml")
    rep = ingest(data, tmp_path / "ws", KEY)
    assert rep.rows["pm_xml"] == pq.read_table(tmp_path / "ws" / "lake" / "pm_xml").num_rows > 0
    assert len(rep.rejected) == 1 and "invalid_nr_no_measured_entity_test.xml" in rep.rejected[0]
    assert (tmp_path / "ws" / "rejected" / "pm_xml" / "invalid_nr_no_measured_entity_test.xml").exists()
    files = set(pq.read_table(tmp_path / "ws" / "lake" / "pm_xml").column("source_file").to_pylist())
    assert len(files) == len(list(samples.glob("*.xml"))) - 1
