"""`opencem stream --engine spark`: Spark Structured Streaming reads the spool folder (the cluster path);
each of its micro-batches goes through the same :meth:`Streamer.process` as every other source.

The offset the stream commits with a batch is Spark's batch id: Spark gives an interrupted batch again under
the same id, and a batch whose id is not past the committed one is skipped, so each counts once. The Spark
checkpoint lives in ``WS/stream/spark-checkpoint``.
"""

from __future__ import annotations

from pathlib import Path

from ..engine.spark_stream import run_spool_stream
from .run import BatchResult, Streamer
from .sources import Message, _check_table


def run_spark(streamer: Streamer, spool: Path, master: str = "local[2]", files_per_batch: int | None = 64,
              after_batch=None) -> list[BatchResult]:
    done: list[BatchResult] = []

    def on_batch(batch_id: int, files) -> None:
        committed = streamer.checkpoint.get("offset")
        if committed is not None and int(committed) >= batch_id:
            return  # given again after a restart: already committed
        msgs = []
        for name, data, mtime in sorted(files):
            table = name[: -len(".parquet")].split("-", 1)[-1]
            msgs.append(Message(f"{batch_id:012d}", _check_table(table, str(spool / name)), data, mtime))
        if not msgs:
            return
        r = streamer.process(msgs)
        done.append(r)
        if after_batch:
            after_batch(r)

    run_spool_stream(Path(spool), on_batch, streamer.state.root / "spark-checkpoint", master, files_per_batch)
    written = streamer.flush()  # the held days of the subscriber tables, when Spark has nothing more
    if written is not None:
        done.append(written)
        if after_batch:
            after_batch(written)
    return done
