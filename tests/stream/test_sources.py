"""The spool source reads its files in sequence order and never past a gap (a folder listing is not a
snapshot: a file missing from one listing is read later, not skipped); bad names and tables are one-line errors."""

from __future__ import annotations

import pyarrow as pa
import pytest

from opencem.errors import InputError
from opencem.stream.replay import table_bytes
from opencem.stream.sources import SpoolSink, open_sink, open_source

DATA = table_bytes(pa.table({"x": [1]}))


def test_spool_reads_in_order_and_waits_at_a_gap(tmp_path):
    for seq in (0, 1, 3):
        (tmp_path / f"{seq:012d}-xdr.parquet").write_bytes(DATA)
    src = open_source(f"spool:{tmp_path}")
    got = src.poll(None, 10)
    assert [m.offset for m in got] == ["000000000000-xdr.parquet", "000000000001-xdr.parquet"]
    assert src.poll(got[-1].offset, 10) == []  # 2 is missing: 3 waits for it
    (tmp_path / "000000000002-pm.parquet").write_bytes(DATA)
    rest = src.poll(got[-1].offset, 10)
    assert [(m.offset[:12], m.table) for m in rest] == [("000000000002", "pm"), ("000000000003", "xdr")]
    assert [m.offset for m in src.poll(None, 1)] == ["000000000000-xdr.parquet"]  # at most max_messages


def test_spool_sink_numbers_on_after_the_consumed_files_are_removed(tmp_path):
    sink = SpoolSink(tmp_path)
    sink.send("xdr", DATA)
    sink.send("pm", DATA)
    sink.close()
    for f in tmp_path.glob("*.parquet"):
        f.unlink()
    again = SpoolSink(tmp_path)
    again.send("xdr", DATA)
    assert [p.name for p in tmp_path.glob("*.parquet")] == ["000000000002-xdr.parquet"]


def test_bad_spool_names_and_tables_are_one_line_errors(tmp_path):
    (tmp_path / "000000000000-cells.parquet").write_bytes(DATA)
    with pytest.raises(InputError, match="cells.*cannot be streamed"):
        open_source(str(tmp_path)).poll(None, 5)
    (tmp_path / "000000000000-cells.parquet").unlink()
    (tmp_path / "today.parquet").write_bytes(DATA)
    with pytest.raises(InputError, match="<sequence>-<table>.parquet"):
        open_source(str(tmp_path)).poll(None, 5)
    with pytest.raises(InputError, match="does not exist"):
        open_source(str(tmp_path / "nope"))
    with pytest.raises(InputError, match="kafka://HOST:PORT"):
        open_source("kafka://?topic=x")
    with pytest.raises(InputError, match="no.such.setting"):  # a client setting librdkafka does not know
        open_source("kafka://127.0.0.1:9092?topic=x&no.such.setting=1")


def _drain(src, after, most):
    """Polls from ``after`` until ``most`` messages or an empty poll (a poll may return any part of what is there)."""
    got = []
    while len(got) < most and (more := src.poll(got[-1].offset if got else after, most - len(got))):
        got += more
    return got


def test_kafka_reads_every_partition_after_the_committed_offsets(kafka_url):
    """A real broker that speaks Kafka's protocol (Tansu), a topic of two partitions: every record once, in
    each partition's order; a poll from an earlier offset (a restart) reads again from there."""
    url = kafka_url.replace("topic=opencem", "topic=two&partitions=2")
    sink = open_sink(url)
    for i in range(6):
        sink.send(("xdr", "pm", "radio_samples")[i % 3], table_bytes(pa.table({"x": [i]})))
    sink.close()
    src = open_source(url)
    try:
        first = _drain(src, None, 4)
        rest = _drain(src, first[-1].offset, 10)
        assert len(first) == 4 and len(rest) == 2 and src.poll(rest[-1].offset, 10) == []
        assert sorted(m.data for m in first + rest) == sorted(table_bytes(pa.table({"x": [i]})) for i in range(6))
        last = dict(part.split(":") for part in rest[-1].offset.split(","))
        assert sorted(last) == ["0", "1"] and sum(int(o) + 1 for o in last.values()) == 6
        again = _drain(src, first[1].offset, 10)  # as after a restart from the second message's commit
        assert sorted(m.data for m in again) == sorted(m.data for m in (first + rest)[2:])
        with pytest.raises(InputError, match="not a Kafka offset"):
            src.poll("xdr-7", 1)
    finally:
        src.close()
