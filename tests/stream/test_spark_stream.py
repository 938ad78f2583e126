"""Spark Structured Streaming on local mode as the trigger: the same measure tables as the batch run, and a
second run over the same spool commits nothing more (Spark's checkpoint and the stream's agree)."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
from stream_support import assert_measure_equal

from opencem.stream.replay import replay
from opencem.stream.run import Streamer

pytestmark = pytest.mark.spark


def test_spark_structured_streaming_gives_the_batch_results(tiny, tmp_path, keyed, monkeypatch):
    from opencem.stream.spark import run_spark

    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    ws = tmp_path / "ws"
    shutil.copytree(tiny[3], ws)
    spool = tmp_path / "spool"
    n = replay(tiny[0].parent, f"spool:{spool}", days=[dt.date.fromisoformat(tiny[1])], window_s=3600).messages
    s = Streamer(ws, f"spool:{spool}")
    done = run_spark(s, spool, "local[2]", files_per_batch=12)
    assert len(done) >= 2 and sum(r.messages for r in done) == n
    assert_measure_equal(ws, tiny[2])
    again = Streamer(ws, f"spool:{spool}")
    assert run_spark(again, spool, "local[2]", files_per_batch=12) == []
    assert again.checkpoint["batch"] == len(done)
