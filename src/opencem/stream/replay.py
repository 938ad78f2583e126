"""`opencem synth-replay`: play an operator's session records, radio samples and PM into a source, in time order.

The records of each day are cut into windows of ``window_s`` seconds of their own time (a session by its
start, a radio sample by its time, PM by its period start); each window becomes one message per table
(split further at ``chunk`` records). Pacing: ``rate`` records per second, or ``speed`` times the clock of
the records (1 = real time, 60 = a minute of records per second), or as fast as the source takes them.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..contracts import TABLES
from ..contracts.validate import inputs_folder
from ..errors import InputError
from .sources import STREAM_TABLES, open_sink


@dataclass
class ReplayResult:
    records: dict[str, int]
    messages: int
    seconds: float
    days: list[dt.date]


def table_bytes(t: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(t, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def _day_files(inputs: Path, table: str) -> dict[dt.date, list[Path]]:
    out: dict[dt.date, list[Path]] = {}
    folder = inputs / table
    if not folder.is_dir():
        return out
    for f in sorted(folder.rglob("*.parquet")):
        part = next((p for p in f.relative_to(folder).parts if p.startswith("day=")), None)
        if part is None:
            raise InputError(f"{f}: a replayed table's files must lie in day=YYYY-MM-DD folders")
        out.setdefault(dt.date.fromisoformat(part[4:]), []).append(f)
    return out


def replay(data: Path, source_url: str, days: list[dt.date] | None = None, rate: float = 0.0, speed: float | None = None,
           window_s: int = 60, chunk: int = 200_000, tables: tuple[str, ...] = STREAM_TABLES,
           say: Callable[[str], None] | None = None) -> ReplayResult:
    say = say or (lambda _m: None)
    inputs = inputs_folder(Path(data))
    files = {t: _day_files(inputs, t) for t in tables}
    all_days = sorted({d for per in files.values() for d in per})
    if days:
        missing = [d for d in days if d not in all_days]
        if missing:
            raise InputError(f"{inputs}: no records on {', '.join(map(str, missing))} (the data has {all_days[0]} .. {all_days[-1]})")
        all_days = [d for d in all_days if d in set(days)]
    if not all_days:
        raise InputError(f"{inputs}: no xdr, radio_samples or pm records to replay")
    sink = open_sink(source_url)
    t0 = time.perf_counter()
    sent, messages = {t: 0 for t in tables}, 0
    first_event = None
    try:
        for day in all_days:
            cols: dict[str, tuple[pa.Table, np.ndarray]] = {}
            for t in tables:
                if day not in files[t]:
                    continue
                tab = pa.concat_tables([pq.read_table(f) for f in files[t][day]], promote_options="default")
                col = TABLES[t].partition_by
                order = pc.sort_indices(tab, [(col, "ascending")])
                tab = tab.take(order)
                ts = pc.cast(pc.cast(tab[col], pa.timestamp("us")), pa.int64()).to_numpy(zero_copy_only=False)
                cols[t] = (tab, ts)
            start = int(dt.datetime.combine(day, dt.time()).replace(tzinfo=dt.timezone.utc).timestamp() * 1e6)
            step = int(window_s * 1e6)
            for w0 in range(start, start + 86_400 * 10**6, step):
                w1 = w0 + step
                for t, (tab, ts) in cols.items():
                    a, b = np.searchsorted(ts, [w0, w1])
                    for c0 in range(a, b, chunk):
                        piece = tab.slice(c0, min(chunk, b - c0))
                        sink.send(t, table_bytes(piece))
                        messages += 1
                        sent[t] += piece.num_rows
                        total = sum(sent.values())
                        if rate > 0:  # N records per second
                            ahead = total / rate - (time.perf_counter() - t0)
                            if ahead > 0:
                                time.sleep(ahead)
                if speed:  # the records' own clock, sped up
                    first_event = w0 if first_event is None else first_event
                    ahead = (w1 - first_event) / 1e6 / speed - (time.perf_counter() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
            say(f"{day}: {sum(sent.values()):,} records in {messages:,} messages")
    finally:
        sink.close()
    return ReplayResult(sent, messages, time.perf_counter() - t0, all_days)
