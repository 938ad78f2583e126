"""`opencem stream` against a batch run: the last day of a small operator streamed into a workspace measured
over the days before it gives the measure tables `opencem measure` gives over every day; a process killed
with SIGKILL inside a batch and started again loses nothing and counts nothing twice; the same over real
Redis and NATS servers."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from stream_support import KEY, assert_measure_equal

from opencem.ingest.pseudonym import KEY_ENV
from opencem.stream.replay import replay, table_bytes
from opencem.stream.run import PAUSE_ENV, SUBSCRIBER_STEPS, StreamState, Streamer
from opencem.stream.sources import open_source
from opencem.workspace import Workspace

pytestmark = pytest.mark.slow  # each streams a day through the measure steps: 20-50 s

CLI = [sys.executable, "-c", "from opencem.cli import app; app()"]


def lake_rows(ws: Path, table: str) -> int:
    return sum(pq.ParquetFile(f).metadata.num_rows for f in Workspace(ws).lake_files(table))


def streamed_copy(tiny, tmp_path) -> Path:
    ws = tmp_path / "ws"
    shutil.copytree(tiny[3], ws)
    return ws


def fill(url: str, tiny) -> int:
    """The last day replayed into the source (an hour of records per message); returns the messages."""
    inputs, day = tiny[0], tiny[1]
    return replay(inputs.parent, url, days=[dt.date.fromisoformat(day)], window_s=3600).messages


def message_batches(ws: Path) -> int:
    """The committed batches that read messages (a batch that only writes the held days reads none)."""
    return sum(json.loads(m.read_text())["messages"] > 0 for m in StreamState(Workspace(ws)).commits.glob("batch-*.json"))


def check_against_batch(ws: Path, tiny) -> None:
    assert_measure_equal(ws, tiny[2])
    for t in ("xdr", "radio_samples", "pm"):  # every record in the lake once
        assert lake_rows(ws, t) == lake_rows(tiny[2], t), t
    marks = sorted(StreamState(Workspace(ws)).commits.glob("batch-*.json"))
    assert [json.loads(m.read_text())["batch"] for m in marks] == list(range(1, len(marks) + 1))
    assert not list((ws / "stream").glob(".staging/*"))  # nothing staged is left behind


def test_streamed_day_equals_batch_measure(tiny, tmp_path, keyed):
    ws = streamed_copy(tiny, tmp_path)
    url = f"spool:{tmp_path / 'spool'}"
    n = fill(url, tiny)
    s = Streamer(ws, url, flush_seconds=math.inf)  # the held days written only when the source is idle
    done = s.run(open_source(url), max_messages=12, until_idle=True)
    assert len(done) == -(-n // 12) + 1 and sum(r.messages for r in done) == n
    assert all(r.pairs > 0 for r in done if r.records.get("xdr"))
    # the subscriber tables' day is held in the engine until the last batch, which reads no message and writes it
    day_dir = f"day={tiny[1]}"
    moved = [[dst for _, dst in json.loads(m.read_text())["moves"] if "measure/" in dst and dst.endswith(day_dir)]
             for m in sorted(StreamState(Workspace(ws)).commits.glob("batch-*.json"))]
    assert not any("kqi_pspu_day" in d for m in moved[:-1] for d in m)
    assert sorted(d.split("/")[1] for d in moved[-1]) == sorted(SUBSCRIBER_STEPS)
    assert done[-1].messages == 0 and done[-1].written == [tiny[1]]
    check_against_batch(ws, tiny)
    # nothing new: a second run reads nothing and changes nothing
    again = Streamer(ws, url)
    assert again.checkpoint["batch"] == len(done)
    assert again.run(open_source(url), until_idle=True) == []
    # a batch measure over the streamed workspace's own lake agrees too (the lake holds what was measured)
    from opencem.measure.run import measure

    rerun = tmp_path / "rerun"
    shutil.copytree(ws, rerun)
    measure(tiny[0], rerun, skip_ingest=True)
    assert_measure_equal(ws, rerun)


def _start(ws: Path, url: str, pause: str | None, flag: Path, options: tuple[str, ...] = ()) -> subprocess.Popen:
    env = {**os.environ, KEY_ENV: KEY}
    if pause:
        env[PAUSE_ENV] = pause
        env[PAUSE_ENV + "_FLAG"] = str(flag)
    return subprocess.Popen(CLI + ["stream", "--workspace", str(ws), "--source", url, "--max-messages", "12", "--until-idle", *options],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def kill_and_restart(ws: Path, url: str, pause: str, tmp_path: Path, options: tuple[str, ...] = ()) -> str:
    """Run the stream until it pauses at ``pause``, SIGKILL it there, run it again to the end; returns its output."""
    flag = tmp_path / "paused"
    flag.unlink(missing_ok=True)
    p = _start(ws, url, pause, flag, options)
    while not flag.exists():
        if p.poll() is not None:
            pytest.fail(f"the stream ended before pausing at {pause}: {p.stdout.read()}")
        time.sleep(0.1)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL
    cp = StreamState(Workspace(ws)).checkpoint()
    batch = int(pause.split(":")[0])
    assert cp["batch"] == batch - 1  # the killed batch is not in the checkpoint
    assert cp["unwritten"]  # and the day's subscriber tables were held in the killed engine: measured again from the lake
    p = _start(ws, url, None, flag, options)
    out, _ = p.communicate(timeout=600)
    assert p.returncode == 0, out
    return out


def test_pm_of_one_period_over_two_batches_equals_batch_measure(tiny, tmp_path, keyed):
    """The cell KPIs of a batch's periods are one more file in the day's partition; PM of a period the
    workspace already has rows of (the rest of its cells, a batch later) writes the day again with that
    period's rows replaced. Both happen here, and the day equals the batch run."""
    ws = streamed_copy(tiny, tmp_path)
    url = f"spool:{tmp_path / 'spool'}"
    data, day = tiny[0].parent, dt.date.fromisoformat(tiny[1])
    replay(data, url, days=[day], window_s=86_400, tables=("xdr", "radio_samples"))
    replay(data, url, days=[day], window_s=3600, chunk=1000, tables=("pm",))  # a 15-minute period in 1-2 messages
    Streamer(ws, url).run(open_source(url), max_messages=3, until_idle=True)
    check_against_batch(ws, tiny)
    targets = [dst for m in sorted(StreamState(Workspace(ws)).commits.glob("batch-*.json"))
               for _, dst in json.loads(m.read_text())["moves"] if "/kpi_cell_15min/" in dst]
    assert any(t.endswith(".parquet") for t in targets)  # a file added to the day
    assert any(t.endswith(f"day={day}") for t in targets)  # the day written again


def test_a_day_of_many_batches_is_compacted(tiny, tmp_path, keyed):
    """With a file per batch, a stream that runs all day would leave thousands of files in a day's folders;
    from ``compact_after`` files on, a batch writes the day's streamed rows as one file in the same commit."""
    ws = streamed_copy(tiny, tmp_path)
    url = f"spool:{tmp_path / 'spool'}"
    n = fill(url, tiny)
    done = Streamer(ws, url, compact_after=4).run(open_source(url), max_messages=3, until_idle=True)
    assert sum(r.messages > 0 for r in done) == -(-n // 3) > 8
    check_against_batch(ws, tiny)
    day = Workspace(ws).lake / "xdr" / f"day={tiny[1]}"
    assert 1 <= len(list(day.glob("stream-*.parquet"))) < 4
    assert len(list((Workspace(ws).measure / "kpi_cell_15min" / f"day={tiny[1]}").glob("*.parquet"))) < 4


@pytest.mark.parametrize("pause", ["2:staged", "3:committed", "3:moved", "3:moved:lake/xdr/day="])
def test_kill_9_inside_a_batch_then_restart(tiny, tmp_path, pause):
    """The last case compacts the day's lake folder on every batch and is killed after that folder's move."""
    ws = streamed_copy(tiny, tmp_path)
    url = f"spool:{tmp_path / 'spool'}"
    n = fill(url, tiny)
    options = ("--compact-after", "2") if "lake/" in pause else ()
    out = kill_and_restart(ws, url, pause, tmp_path, options)
    batch = int(pause.split(":")[0])
    # after the commit marker, the restart rolls the killed batch forward and goes on with the next one
    first = batch + 1 if pause != f"{batch}:staged" else batch
    assert f"batch {first}:" in out and f"batch {first - 1}:" not in out
    check_against_batch(ws, tiny)
    assert message_batches(ws) == -(-n // 12)
    if options:
        assert len(list((Workspace(ws).lake / "xdr" / f"day={tiny[1]}").glob("stream-*.parquet"))) == 1


@pytest.mark.parametrize("broker", ["redis", "nats", "kafka"])
def test_brokers_exactly_once_and_equal_to_batch(tiny, tmp_path, broker, request):
    url = request.getfixturevalue(f"{broker}_url")
    ws = streamed_copy(tiny, tmp_path)
    n = fill(url, tiny)
    kill_and_restart(ws, url, "3:moved", tmp_path)
    check_against_batch(ws, tiny)
    cp = StreamState(Workspace(ws)).checkpoint()
    assert message_batches(ws) == -(-n // 12) and cp["source"] == url and cp["unwritten"] == []
    src = open_source(url)
    try:
        assert src.poll(cp["offset"], 10) == []  # every message was read
    finally:
        src.close()


def test_bad_messages_are_set_aside_and_the_rest_committed(tiny, tmp_path, keyed):
    ws = streamed_copy(tiny, tmp_path)
    spool = tmp_path / "spool"
    url = f"spool:{spool}"
    n = fill(url, tiny)
    files = sorted(spool.glob("*-xdr.parquet"))
    good = pq.read_table(files[0])
    # a message without a required column, and one with a row whose service is NULL
    (spool / f"{n:012d}-xdr.parquet").write_bytes(table_bytes(good.drop_columns(["start_time"])))
    bad_row = good.slice(0, 3).set_column(good.schema.get_field_index("subscriber_id"), "subscriber_id",
                                          pa.array([None, *good["subscriber_id"].to_pylist()[1:3]], pa.string()))
    (spool / f"{n + 1:012d}-xdr.parquet").write_bytes(table_bytes(bad_row))
    lines = []
    s = Streamer(ws, url, say=lines.append)
    done = s.run(open_source(url), max_messages=12, until_idle=True)
    last = [r for r in done if r.messages][-1]
    assert len(last.rejected) == 1 and f"{n:012d}-xdr.parquet" in last.rejected[0] and "start_time" in last.rejected[0]
    assert "\n" not in last.rejected[0]
    assert last.quarantined == 1 and any("column 'subscriber_id'" in line and "row 1" in line for line in lines)
    assert (ws / "quarantine" / "stream" / f"batch-{last.batch:09d}.parquet").exists()
    # the 2 good rows of the second message are in (sessions already streamed: counted again, as a resent file
    # with new session ids would be); everything before is as the batch run has it
    assert lake_rows(ws, "xdr") == lake_rows(tiny[2], "xdr") + 2


def test_a_rerun_of_the_same_batches_gives_the_same_output(tiny, tmp_path, keyed):
    url = f"spool:{tmp_path / 'spool'}"
    fill(url, tiny)
    outs = []
    for name in ("a", "b"):
        ws = tmp_path / name
        shutil.copytree(tiny[3], ws)
        Streamer(ws, url).run(open_source(url), max_messages=12, until_idle=True)
        outs.append(ws)
    assert_measure_equal(outs[0], outs[1])
    marks = [[json.loads(m.read_text()) for m in sorted((w / "stream" / "commits").glob("*.json"))] for w in outs]
    # when the held days are written depends on the clock, not on the records; what the batches read and did does not
    strip = lambda docs: [{k: v for k, v in d.items() if k not in ("moves", "unwritten")} for d in docs if d["messages"]]  # noqa: E731
    assert strip(marks[0]) == strip(marks[1])
