"""`opencem stream` on one day of a synthetic operator: sustained records/s, latency to an updated score, and
the time from a fault's start to its episode alert.

    python benchmarks/stream_throughput.py throughput --workspace WS --data DATA [--day D] [--max-messages 64] [--window 3600]
    python benchmarks/stream_throughput.py latency    --workspace WS --data DATA [--day D] --rate 20000 [--window 60] [--source URL]
    python benchmarks/stream_throughput.py episode    --workspace WS --data DATA --day D --from HH:MM [--window 900]
    python benchmarks/stream_throughput.py batches    --workspace WS --data DATA [--day D] [--window 60] [--warm 1500] [--max-messages 30] [--batches 20]

WS is a workspace `opencem measure`, `train nps` and `score` have filled from DATA (`opencem synth` output). Each
mode copies WS (hard links) without day D and the days after it, so day D is streamed into the days before it,
from a spool folder (no server):

* throughput: the whole day is spooled first, then streamed until the spool is empty; records/s = the
  day's records / the stream's wall time (validation, lake, measure steps, rescoring, commit; no episodes).
* latency: `opencem synth-replay` writes the day into the spool at ``--rate`` records/s in its own process
  while the stream runs, as an operator's feed would (``--producer thread``: in a thread of this process,
  sharing the stream's interpreter lock, as up to stop 38); a message's latency runs from its file's
  appearance in the spool to the commit of the batch that measured and rescored its subscribers. p50 / p99
  over messages. ``--source URL`` (a redis://, nats:// or kafka:// broker already running, with an empty
  stream or topic) goes through that broker instead; a message's arrival is then its producer's send time.
* episode: the day is streamed from midnight without episodes up to ``--from`` (records' time), then with
  the twin's episode detection after every batch; reports the first episode alert whose episode starts
  after ``--from``, in the records' time (from the fault's start in DATA/truth/faults.parquet) and in wall
  time (from the arrival of the first message after the fault's start to the alert's commit).
* batches: the day spooled in ``--window`` messages; the first ``--warm`` messages in one batch (to about
  midday), then ``--batches`` batches of ``--max-messages`` messages timed: the mean seconds a batch, the
  fixed cost of a small batch that an A/B of two versions of the code compares (PYTHONPATH=their src); then
  the held days of the subscriber tables written (``write_s``: the stream does it every ``flush_seconds``).

Appends a JSON line to benchmarks/results/stream_throughput.jsonl.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq

from opencem.stream.replay import replay
from opencem.stream.run import Streamer
from opencem.stream.sources import open_source

RESULTS = Path(__file__).parent / "results" / "stream_throughput.jsonl"
MODEL: Path | None = None
STREAM_OPTIONS: dict = {}


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else float("nan")


def copy_before(ws: Path, day: str, dst: Path) -> Path:
    def skip(d, names):
        here = Path(d)
        out = [n for n in names if n.startswith("day=") and n[4:] >= day and here.parent.name in ("lake", "measure")]
        return out + ([n for n in names if n in ("stream", "catalog.duckdb")] if here == ws else [])

    shutil.copytree(ws, dst, copy_function=os.link, ignore=skip)
    if MODEL and not (dst / "models" / "nps").exists():
        shutil.copytree(MODEL, dst / "models" / "nps")
    return dst


def last_day(data: Path) -> str:
    return sorted(p.name for p in (data / "inputs" / "xdr").iterdir())[-1][4:]


def spooled(args, tmp: Path):
    """(a stream into a copy of the workspace without the day, the spool it reads, the replay of the whole
    day into that spool in ``--window`` messages)."""
    ws = copy_before(args.workspace, args.day, tmp / "ws")
    url = f"spool:{tmp / 'spool'}"
    rep = replay(args.data, url, days=[dt.date.fromisoformat(args.day)], window_s=args.window)
    return Streamer(ws, url, **STREAM_OPTIONS), open_source(url), rep


def throughput(args, tmp: Path) -> dict:
    s, src, rep = spooled(args, tmp)
    t0 = time.perf_counter()
    done = s.run(src, max_messages=args.max_messages, until_idle=True)
    wall = time.perf_counter() - t0
    records = sum(sum(r.records.values()) for r in done)
    assert records == sum(rep.records.values())
    tail = done[-max(1, len(done) // 10):]  # the day's last batches, on the most files
    return {"records": records, "by_table": rep.records, "messages": rep.messages, "batches": len(done),
            "seconds": round(wall, 2), "records_per_s": round(records / wall), "batch_s_p50": round(pct([r.seconds for r in done], 0.5), 2),
            "batch_s_max": round(max(r.seconds for r in done), 2), "scored": sum(r.scored for r in done),
            "batch_s_last_tenth": round(sum(r.seconds for r in tail) / len(tail), 2)}


def latency(args, tmp: Path) -> dict:
    ws = copy_before(args.workspace, args.day, tmp / "ws")
    url = args.source
    if url is None:
        (tmp / "spool").mkdir()
        url = f"spool:{tmp / 'spool'}"
    s = Streamer(ws, url, **STREAM_OPTIONS)
    if args.producer == "thread":
        producer = threading.Thread(target=lambda: replay(args.data, url, days=[dt.date.fromisoformat(args.day)],
                                                          rate=args.rate, window_s=args.window))
        producer.start()
        alive = producer.is_alive
    else:
        cmd = [shutil.which("opencem") or "opencem", "synth-replay", "--data", str(args.data), "--source", url,
               "--day", args.day, "--rate", str(args.rate), "--window", str(args.window)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
        alive = lambda: proc.poll() is None  # noqa: E731
    t0 = time.perf_counter()
    src = open_source(url)
    done = []
    while alive() or src.poll(s.checkpoint["offset"], 1):
        # a stream that runs on: the held days are written when due, not each time it catches up
        done += s.run(src, max_messages=args.max_messages, until_idle=True, write_when_idle=False)
        time.sleep(0.05)
    if args.producer != "thread" and proc.returncode:
        raise SystemExit(f"synth-replay failed ({proc.returncode}): {' '.join(cmd)}")
    wall = time.perf_counter() - t0
    lat = [r.committed_at - a for r in done for a in r.arrivals]
    records = sum(sum(r.records.values()) for r in done)
    return {"source": url.split(":", 1)[0] if args.source else "spool", "rate_asked": args.rate, "producer": args.producer, "records": records, "seconds": round(wall, 2), "records_per_s": round(records / wall),
            "batches": len(done), "messages": len(lat), "latency_s_p50": round(pct(lat, 0.5), 3),
            "latency_s_p99": round(pct(lat, 0.99), 3), "latency_s_max": round(max(lat), 3),
            "batch_s_p50": round(pct([r.seconds for r in done], 0.5), 2)}


def episode(args, tmp: Path) -> dict:
    ws = copy_before(args.workspace, args.day, tmp / "ws")
    url = f"spool:{tmp / 'spool'}"
    day = dt.date.fromisoformat(args.day)
    replay(args.data, url, days=[day], window_s=args.window)
    start = dt.datetime.combine(day, dt.time.fromisoformat(args.from_))
    faults = pq.read_table(args.data / "truth" / "faults.parquet").to_pylist()
    src = open_source(url)
    # up to --from without episodes (3 tables a window: a message each)
    warm = Streamer(ws, url)
    while warm.checkpoint.get("clock") is None or dt.datetime.fromisoformat(warm.checkpoint["clock"]) < start - dt.timedelta(seconds=args.window):
        if not warm.run(src, max_messages=3, max_batches=1, until_idle=True):
            break
    s = Streamer(ws, url, episodes=True, episode_days=args.episode_days)
    found = None
    batches = []
    while found is None:
        t_arrive = time.time()  # the batch's messages are taken now: as if they had just arrived
        done = s.run(src, max_messages=3, max_batches=1, until_idle=True)
        if not done:
            break
        r = done[0]
        batches.append(r.seconds)
        out = s.state.outbox_table().to_pylist()
        for a in out:
            if a["batch"] == r.batch and a["kind"] in ("episode_start", "episode_grow", "episode_cause") and a["event_time"] >= start - dt.timedelta(hours=1):
                fault = next((f for f in faults if f["start_time"] >= start - dt.timedelta(hours=1) and f["start_time"] <= s_clock(s)
                              and f["cells"] and (a["cause"] == f["cause"])), None)
                found = {"alert": a["alert_id"], "kind": a["kind"], "cause": a["cause"], "clock": s.checkpoint["clock"],
                         "fault": fault["fault_id"] if fault else None, "fault_start": str(fault["start_time"]) if fault else None,
                         "records_time_to_alert_s": round((s_clock(s) - fault["start_time"]).total_seconds()) if fault else None,
                         "wall_s_from_batch_arrival": round(r.committed_at - t_arrive, 1)}
                break
    return {"window_s": args.window, "episode_days": args.episode_days, "batches_with_episodes": len(batches),
            "batch_s_p50": round(pct(batches, 0.5), 1), "alert": found}


def batches(args, tmp: Path) -> dict:
    s, src, _ = spooled(args, tmp)
    s.run(src, max_messages=args.warm, max_batches=1, until_idle=True)
    t0 = time.perf_counter()
    done = s.run(src, max_messages=args.max_messages, max_batches=args.batches, until_idle=True)
    wall = time.perf_counter() - t0
    t1 = time.perf_counter()
    written = s.flush()  # the held days, as a stream writes them every flush_seconds
    return {"warm_messages": args.warm, "batches": len(done), "records": sum(sum(r.records.values()) for r in done),
            "batch_s_mean": round(wall / len(done), 3), "batch_s_p50": round(pct([r.seconds for r in done], 0.5), 3),
            "written_in_batches": sum(bool(r.written) for r in done),
            "write_s": round(time.perf_counter() - t1, 3) if written else None}


def s_clock(s: Streamer) -> dt.datetime:
    return dt.datetime.fromisoformat(s.checkpoint["clock"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("throughput", "latency", "episode", "batches"))
    ap.add_argument("--workspace", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--day", default=None)
    ap.add_argument("--rate", type=float, default=20_000)
    ap.add_argument("--window", type=int, default=None, help="seconds of records per message")
    ap.add_argument("--max-messages", type=int, default=None, help="messages a batch at most (64; batches: 30)")
    ap.add_argument("--compact-after", type=int, default=None, help="the stream's compact_after (default its own)")
    ap.add_argument("--flush-seconds", type=float, default=None, help="the stream's flush_seconds (default its own, 60)")
    ap.add_argument("--producer", choices=("process", "thread"), default="process",
                    help="latency: replay in its own process (default) or in a thread of the benchmark's")
    ap.add_argument("--source", default=None, help="latency: a broker's URL (redis://, nats://, kafka://) instead of a spool folder")
    ap.add_argument("--from", dest="from_", default="14:00")
    ap.add_argument("--episode-days", type=int, default=7)
    ap.add_argument("--warm", type=int, default=1500, help="batches: messages in the first, untimed batch")
    ap.add_argument("--batches", type=int, default=20, help="batches: the timed batches")
    ap.add_argument("--model", type=Path, default=None,
                    help="an NPS model folder to score with when WS has none (another operator's: the cost is measured, not the accuracy)")
    args = ap.parse_args()
    global MODEL, STREAM_OPTIONS
    MODEL = args.model
    STREAM_OPTIONS = {k: v for k, v in (("compact_after", args.compact_after), ("flush_seconds", args.flush_seconds)) if v}
    args.day = args.day or last_day(args.data)
    args.window = args.window or {"throughput": 3600, "latency": 60, "episode": 900, "batches": 60}[args.mode]
    args.max_messages = args.max_messages or (30 if args.mode == "batches" else 64)
    with tempfile.TemporaryDirectory(prefix="stream-bench-") as tmp:
        out = {"throughput": throughput, "latency": latency, "episode": episode, "batches": batches}[args.mode](args, Path(tmp))
    row = {"benchmark": f"stream_{args.mode}", **STREAM_OPTIONS, "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "day": args.day, "window_s": args.window, "max_messages": args.max_messages, "cores": os.cpu_count(),
           "python": platform.python_version(), "model_from": "another operator" if args.model else "the workspace", "workspace_subscribers": pq.read_metadata(args.data / "inputs" / "subscribers.parquet").num_rows,
           **out}
    print(json.dumps(row, indent=1, default=str))
    RESULTS.parent.mkdir(exist_ok=True)
    with open(RESULTS, "a") as fh:
        fh.write(json.dumps(row, default=str) + "\n")


if __name__ == "__main__":
    sys.exit(main())
