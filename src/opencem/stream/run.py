"""`opencem stream`: micro-batches of session records, radio samples and PM into the workspace, exactly once.

One micro-batch, with its id (1, 2, ...) and the source offsets it covers:

1. each message is validated with its table's contract and pseudonymised as `opencem measure` does it
   (the same :func:`~opencem.contracts.validate.validate_file`); bad rows are quarantined, a message that
   cannot be read is set aside with a one-line reason;
2. its rows are staged as lake files of their table and day (``lake/<table>/day=D/stream-<batch>.parquet``),
   so a later batch run over the workspace sees the same records; a day folder that would hold
   ``compact_after`` streamed files gets them as one;
3. the measure steps (:func:`opencem.measure.steps.measure_steps`, the same SQL) run over every record of the
   (subscriber, day) pairs the batch touched, and those pairs' rows replace theirs in the engine's copy of
   each touched day of the subscriber tables (``held_<table>``); the held days are written as the day's
   partitions every ``flush_seconds`` and at the end of a run (:meth:`Streamer.flush`), in a batch's commit,
   and the checkpoint names the days written later (``unwritten``): after a restart those days are measured
   again from the lake, whose records every batch commits. PM computes ``kpi_cell_15min`` for the 15-minute
   periods it brought, as one more file of the day (or the day again, for late PM of a stored period);
4. the touched subscribers, and only those, are scored with the workspace's NPS model
   (:func:`~opencem.nps.features.build_features`, :class:`~opencem.nps.model.NpsModel`) as of the day after the
   latest day streamed; a subscriber falling to detractor is an alert;
5. the commit: a marker ``stream/commits/batch-<id>.json`` naming every staged file, its target and the end
   offset is written atomically (the commit point), the staged files are renamed into place, then
   ``stream/checkpoint.json``. A restart rolls a committed batch forward (the renames are idempotent) and
   discards an uncommitted one, then reads the source after the checkpoint's offset: nothing is lost and
   nothing counted twice.

Alerts go to ``stream/outbox/batch-<id>.parquet`` in the same commit; :mod:`opencem.stream.alerts` POSTs them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..contracts import TABLES
from ..contracts.validate import ContractError, validate_file
from ..engine import Engine, make_engine, quote_ident, quote_literal
from ..engine.files import atomic_write_text
from ..engine.pipeline import run_step
from ..errors import InputError
from ..indicators.tree import load_tree
from ..ingest.lake import STREAMED_PREFIX, streamed_file_name
from ..ingest.pseudonym import Pseudonymiser, load_key
from ..measure.steps import measure_steps
from ..workspace import LAKE_TABLES, MEASURE_TABLES, Workspace
from .sources import STREAM_TABLES, Message

PAUSE_ENV = "OPENCEM_STREAM_PAUSE"  # "<batch>:<point>": stop (sleep) at that point of that batch, for the kill -9 test
SUBSCRIBER_STEPS = ("kqi_pspu_day", "cei_service_day", "cei_subscriber_day", "cei_journey_day",
                    "radio_subscriber_day", "subscriber_position_day", "subscriber_cell_day", "poor_session_day")
CELL_STEPS = ("kpi_cell_15min",)
COMPACT_AFTER = 32  # a day folder's files a batch adds to before it writes them as one (reads open every file)
FLUSH_SECONDS = 60.0  # the subscriber tables' held days are written at most this long after they changed
OUTBOX_SCHEMA = pa.schema([("alert_id", pa.string()), ("batch", pa.int64()), ("kind", pa.string()),
                           ("subscriber_id", pa.string()), ("grid", pa.string()), ("as_of", pa.date32()),
                           ("event_time", pa.timestamp("us")), ("cause", pa.string()), ("detail", pa.string())])


@dataclass
class BatchResult:
    batch: int
    offset: str | None
    messages: int
    records: dict[str, int] = field(default_factory=dict)
    quarantined: int = 0
    rejected: list[str] = field(default_factory=list)
    pairs: int = 0  # (subscriber, day) pairs measured again
    scored: int = 0
    alerts: int = 0
    written: list[str] = field(default_factory=list)  # the held days written as the subscriber tables' partitions
    seconds: float = 0.0
    arrivals: list[float] = field(default_factory=list)  # when each message was made available (epoch s), if known
    committed_at: float = 0.0  # epoch s


class StreamState:
    """The stream's folder in a workspace: checkpoint, commit markers, staging, outbox, scores."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.root = ws.root / "stream"
        self.checkpoint_path = self.root / "checkpoint.json"
        self.commits = self.root / "commits"
        self.outbox = self.root / "outbox"
        self.scores = self.root / "scores"
        self.staging = self.root / ".staging"

    def checkpoint(self) -> dict:
        if self.checkpoint_path.exists():
            return json.loads(self.checkpoint_path.read_text())
        return {"batch": 0, "offset": None, "source": None, "clock_day": None}

    def marker(self, batch: int) -> Path:
        return self.commits / f"batch-{batch:09d}.json"

    def recover(self) -> dict:
        """Roll a committed batch forward, discard an uncommitted one; return the checkpoint."""
        cp = self.checkpoint()
        nxt = self.marker(cp["batch"] + 1)
        if nxt.exists():
            doc = json.loads(nxt.read_text())
            _apply(self.ws.root, doc["moves"])
            cp = _checkpoint_of(doc)
            atomic_write_text(self.checkpoint_path, json.dumps(cp, indent=1) + "\n")
        if self.staging.exists():
            shutil.rmtree(self.staging)
        return cp

    def outbox_table(self) -> pa.Table:
        files = sorted(self.outbox.glob("batch-*.parquet")) if self.outbox.is_dir() else []
        return pa.concat_tables([pq.read_table(f) for f in files]) if files else OUTBOX_SCHEMA.empty_table()

    def scores_table(self) -> pa.Table | None:
        f = self.scores / "part.parquet"
        return pq.read_table(f) if f.exists() else None


def _checkpoint_of(doc: dict) -> dict:
    return {k: doc.get(k) for k in ("batch", "offset", "source", "clock_day", "clock", "unwritten")}


def _apply(root: Path, moves: list[list[str]]) -> None:
    """Rename each staged file or folder onto its target; a move already done (source gone) is skipped,
    so applying a commit twice is applying it once."""
    for src_rel, dst_rel in moves:
        src, dst = root / src_rel, root / dst_rel
        if not src.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            aside = dst.parent / f".{dst.name}.old"
            shutil.rmtree(aside, ignore_errors=True)
            if dst.exists():
                os.replace(dst, aside)
            os.replace(src, dst)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(src, dst)
        _pause(None, f"moved:{dst_rel}")


_PAUSE_BATCH: list[int] = []  # the batch being processed, for the pause hook


def _pause(batch: int | None, point: str) -> None:
    """The test hook: with OPENCEM_STREAM_PAUSE=<batch>:<point>, write a flag file and sleep at that point
    (the test kills the process there). Points: ``staged`` (before the commit marker), ``committed``
    (after it, before any rename), ``moved`` (after the first rename)."""
    spec = os.environ.get(PAUSE_ENV)
    if not spec:
        return
    want_batch, _, want_point = spec.partition(":")
    b = batch if batch is not None else (_PAUSE_BATCH[-1] if _PAUSE_BATCH else None)
    if b != int(want_batch) or not point.startswith(want_point):
        return
    flag = os.environ.get(PAUSE_ENV + "_FLAG")
    if flag:
        Path(flag).write_text(f"{b}:{point}\n")
    while True:
        time.sleep(1)


class Streamer:
    """Processes micro-batches into a workspace (see the module's docstring)."""

    def __init__(self, workspace: Path, source_url: str, say: Callable[[str], None] | None = None,
                 score: bool = True, episodes: bool = False, episode_days: int = 7,
                 compact_after: int = COMPACT_AFTER, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.ws = Workspace(workspace)
        if not all(self.ws.measure_files(t) for t in MEASURE_TABLES):
            raise InputError(f"{self.ws.root}: no measure tables; run `opencem measure` on this workspace before streaming into it")
        self.state = StreamState(self.ws)
        self.source_url = source_url
        self.say = say or (lambda _m: None)
        self.steps = {s.name: s for s in measure_steps(load_tree())}
        self.key = load_key(self.ws.pseudonym_key, create=False)
        self.model = None
        self.feats = None
        if score and self.ws.model("nps").is_dir():
            from ..nps.features import feature_list
            from ..nps.model import NpsModel

            self.model = NpsModel.load(self.ws.model("nps"))
            self.feats = feature_list(load_tree())
            if [f.name for f in self.feats] != self.model.encoder.names:
                raise InputError(f"{self.ws.model('nps')}: the model was trained on other features; run `opencem train nps` again")
        self.episodes = episodes
        self.episode_days = episode_days
        self.compact_after = compact_after
        self.checkpoint = self.state.recover()
        self._eng: Engine | None = None  # one engine for every batch: opening it and its views is a batch's fixed cost
        self._views: dict[str, list[str]] = {}
        self._pm_first_batch: int | None = None  # the batch that made the engine's pm_first (_pm_first)
        # the subscriber tables' days held in the engine (held_<table>), valid as of batch _held_batch; writing
        # a touched day's partitions whole after every batch was most of a small batch's time
        self.flush_seconds = flush_seconds
        self._held_days: set[dt.date] = set()
        self._held_made = False  # the held tables are there
        self._held_batch: int | None = None
        self._written_at = time.monotonic()
        self._old_files: dict[str, list[str]] = {}  # the stored files each old_<table> view is over

    def _engine(self) -> Engine:
        """The stream's engine, its views of the lake tables a stream does not carry renewed where their files
        changed (the stream and measure tables are registered by each batch: :meth:`_measure_and_score`)."""
        if self._eng is None:
            self._eng = make_engine("duckdb", spill_dir=self.ws.spill, compress=False)
        self.ws.register(self._eng, tuple(t for t in LAKE_TABLES if t not in STREAM_TABLES), self._views)
        return self._eng

    def close(self) -> None:
        if self._eng is not None:
            self._eng.close()
            self._eng = None

    # -- one micro-batch -------------------------------------------------------------------------------
    def flush(self) -> BatchResult | None:
        """Write the held days of the subscriber tables now (a batch without messages); None if none is unwritten."""
        if not self.checkpoint.get("unwritten"):
            return None
        return self.process([], flush=True)

    def process(self, messages: list[Message], flush: bool = False) -> BatchResult:
        t0 = time.perf_counter()
        batch = self.checkpoint["batch"] + 1
        _PAUSE_BATCH.append(batch)
        rebuild = self._held_state()
        self._held_batch = None  # until this batch commits: a batch that fails may leave the held tables half changed
        st = self.state
        stage = st.staging / f"batch-{batch:09d}"
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir(parents=True)
        res = BatchResult(batch, messages[-1].offset if messages else self.checkpoint["offset"], len(messages))
        valid = self._validate(messages, stage, batch, res)
        moves: list[list[str]] = []
        rel = lambda p: Path(p).relative_to(self.ws.root).as_posix()  # noqa: E731
        clock_day = dt.date.fromisoformat(self.checkpoint["clock_day"]) if self.checkpoint.get("clock_day") else None
        alerts = OUTBOX_SCHEMA.empty_table()
        eng = self._engine()
        lake_new = self._stage_lake(eng, valid, stage, batch, moves, rel)
        days = sorted({d for per in lake_new.values() for d in per})
        if days:
            clock_day = max([clock_day, *days]) if clock_day else max(days)
        if lake_new or rebuild:
            res.pairs, scored = self._measure_and_score(eng, stage, lake_new, rebuild, clock_day, moves, rel, res)
            if scored is not None:
                alerts = self._stage_scores(*scored, stage, batch, moves, rel)
        # the held days that differ from their partitions on disk: the checkpoint's, and those this batch changed
        unwritten = sorted({dt.date.fromisoformat(d) for d in self.checkpoint.get("unwritten") or []}
                           | set(lake_new.get("xdr", [])) | set(lake_new.get("radio_samples", [])))
        if unwritten and (flush or time.monotonic() - self._written_at >= self.flush_seconds):
            self._stage_held(eng, stage, unwritten, moves, rel)
            res.written, unwritten = [d.isoformat() for d in unwritten], []
        clock = self._clock(eng, stage)
        self._compact_lake(eng, stage, lake_new, batch, moves, rel)
        if self.episodes and clock is not None and lake_new:
            from .episodes import episode_alerts

            found = episode_alerts(self, stage, moves, rel, batch, clock)
            if found.num_rows:
                alerts = pa.concat_tables([alerts, found])
        res.alerts = alerts.num_rows
        if res.alerts:
            pq.write_table(alerts, stage / "outbox.parquet")
            moves.append([rel(stage / "outbox.parquet"), rel(st.outbox / f"batch-{batch:09d}.parquet")])
        if res.rejected or res.quarantined:
            atomic_write_text(stage / "rejected.json", json.dumps({"rejected": res.rejected, "quarantined": res.quarantined}) + "\n")
            moves.append([rel(stage / "rejected.json"), rel(st.root / "rejected" / f"batch-{batch:09d}.json")])
        if (stage / "quarantine.parquet").exists():
            moves.append([rel(stage / "quarantine.parquet"), rel(self.ws.root / "quarantine" / "stream" / f"batch-{batch:09d}.parquet")])
        doc = {"batch": batch, "offset": res.offset, "source": self.source_url,
               "clock_day": clock_day.isoformat() if clock_day else None, "unwritten": [d.isoformat() for d in unwritten],
               "clock": clock.isoformat() if clock else self.checkpoint.get("clock"), "messages": len(messages),
               "records": res.records, "pairs": res.pairs, "scored": res.scored, "alerts": res.alerts, "moves": moves}
        _pause(batch, "staged")
        atomic_write_text(st.marker(batch), json.dumps(doc, indent=1) + "\n")  # the commit point
        _pause(batch, "committed")
        _apply(self.ws.root, moves)
        self.checkpoint = _checkpoint_of(doc)
        atomic_write_text(st.checkpoint_path, json.dumps(self.checkpoint, indent=1) + "\n")
        if "pm" not in lake_new and self._pm_first_batch == batch - 1:
            self._pm_first_batch = batch  # a batch without PM leaves the cells' first periods as they were
        self._held_batch = batch
        if not unwritten:  # written: only the clock's day stays held
            self._written_at = time.monotonic()
            self._release_held(eng, clock_day)
        shutil.rmtree(stage, ignore_errors=True)
        _PAUSE_BATCH.pop()
        res.seconds = time.perf_counter() - t0
        res.committed_at = time.time()
        res.arrivals = [m.sent_at for m in messages if m.sent_at is not None]
        return res

    def _clock(self, eng: Engine, stage: Path) -> dt.datetime | None:
        """The latest session start streamed so far (the stream's clock in the records' own time)."""
        before = dt.datetime.fromisoformat(self.checkpoint["clock"]) if self.checkpoint.get("clock") else None
        files = sorted(str(p) for p in (stage / "lake" / "xdr").rglob("*.parquet"))
        if not files:
            return before
        eng.register_parquet("clock_in", files, hive_partitioning=False)
        latest = eng.query_row("SELECT max(start_time) FROM clock_in")[0]
        eng.drop("clock_in")
        return max(t for t in (before, latest) if t is not None)

    def _validate(self, messages: list[Message], stage: Path, batch: int, res: BatchResult) -> dict[str, list[Path]]:
        """Each message through its contract into staged Parquet (pseudonymised); returns table -> files.

        The messages of one table are checked together, in one scan of their files; when that finds anything
        wrong (or they do not read as one table), each is checked on its own, so the error names the message
        and its row."""
        out: dict[str, list[Path]] = {}
        quarantine: list[pa.Table] = []
        by_table: dict[str, list[int]] = {}
        raw_files = [stage / "in" / f"{i:06d}-{m.table}.parquet" for i, m in enumerate(messages)]
        (stage / "in").mkdir(parents=True, exist_ok=True)
        for i, m in enumerate(messages):
            by_table.setdefault(m.table, []).append(i)
            raw_files[i].write_bytes(m.data)
        eng = self._engine()
        single: list[int] = []
        for table, idx in by_table.items():
            if len(idx) == 1:
                single += idx
                continue
            r, dst = self._check(eng, [raw_files[i] for i in idx], table,
                                 f"{self.source_url} messages {messages[idx[0]].offset}..{messages[idx[-1]].offset}",
                                 stage / "valid" / f"all-{table}.parquet")
            if r is None or r.quarantine.num_rows:
                if r is not None:
                    dst.unlink(missing_ok=True)
                single += idx
                continue
            res.records[table] = res.records.get(table, 0) + r.rows
            if r.rows:
                out.setdefault(table, []).append(dst)
        for i in sorted(single):
            m, raw = messages[i], raw_files[i]
            r, dst = self._check(eng, raw, m.table, f"{self.source_url} message {m.offset}", stage / "valid" / f"{i:06d}-{m.table}.parquet")
            if r is None:
                res.rejected.append(dst)
                self.say(f"error: {dst}")
                continue
            if r.quarantine.num_rows:
                res.quarantined += r.quarantine.num_rows
                quarantine.append(r.quarantine)
                for line in r.messages(3):
                    self.say(f"quarantined: {line}")
            res.records[m.table] = res.records.get(m.table, 0) + r.rows
            if r.rows:
                out.setdefault(m.table, []).append(dst)
            else:
                dst.unlink(missing_ok=True)
        shutil.rmtree(stage / "in", ignore_errors=True)
        if quarantine:
            pq.write_table(pa.concat_tables(quarantine, promote_options="default"), stage / "quarantine.parquet")
        return out

    def _check(self, eng: Engine, raw: Path | list[Path], table: str, name: str, dst: Path):
        """(validation result, its valid rows' file), or (None, the one-line reason) for a file that cannot be read."""
        pseudonym = Pseudonymiser(self.key).sql(quote_ident("subscriber_id"))
        dst.parent.mkdir(parents=True, exist_ok=True)
        replace = ("subscriber_id", *pseudonym) if "subscriber_id" in TABLES[table].column_names else None
        try:
            return validate_file(raw, table, name, write_to=dst, replace=replace, engine=eng), dst
        except ContractError as e:
            dst.unlink(missing_ok=True)
            return None, str(e)

    def _stage_lake(self, eng: Engine, valid: dict[str, list[Path]], stage: Path, batch: int, moves: list, rel) -> dict[str, list[dt.date]]:
        """The batch's rows as one lake file per table and day; returns table -> days."""
        out: dict[str, list[dt.date]] = {}
        for table, files in valid.items():
            col = quote_ident(TABLES[table].partition_by)
            eng.register_parquet("batch_in", [str(f) for f in files], hive_partitioning=False)
            days = eng.query_arrow(f"SELECT DISTINCT CAST({col} AS DATE) AS d FROM batch_in WHERE {col} IS NOT NULL ORDER BY d")["d"].to_pylist()
            eng.drop("batch_in")
            for d in days:
                f = stage / "lake" / table / f"day={d}" / streamed_file_name(batch)
                if len(days) == 1 and len(files) == 1:  # the validated file is the day's file already
                    f.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(files[0], f)
                else:
                    eng.register_parquet("batch_in", [str(x) for x in files], hive_partitioning=False)
                    eng.export_parquet(f"SELECT * FROM batch_in WHERE CAST({col} AS DATE) = DATE {quote_literal(d.isoformat())}", f)
                    eng.drop("batch_in")
                moves.append([rel(f), rel(self.ws.lake / table / f"day={d}" / f.name)])
            out[table] = days
        return out

    def _compact_lake(self, eng: Engine, stage: Path, lake_new: dict[str, list[dt.date]], batch: int, moves: list, rel) -> None:
        """A lake day folder that would hold ``compact_after`` streamed files or more is staged again: its other
        files linked, and every streamed row of the day (this batch's too) in one file; it then replaces the
        folder in the commit, as a measure partition does."""
        for table, days in lake_new.items():
            for d in days:
                day_dir = self.ws.lake / table / f"day={d}"
                new = stage / "lake" / table / f"day={d}" / streamed_file_name(batch)
                streamed = sorted(day_dir.glob(f"{STREAMED_PREFIX}*.parquet")) if day_dir.is_dir() else []
                if len(streamed) + 1 < self.compact_after:
                    continue
                out = stage / "compact" / table / f"day={d}"
                out.mkdir(parents=True)
                for f in day_dir.iterdir():
                    if f.is_file() and not f.name.startswith(STREAMED_PREFIX):
                        os.link(f, out / f.name)
                files = ", ".join(quote_literal(str(f)) for f in [*streamed, new])  # in the order they came
                eng.export_parquet(f"SELECT * FROM read_parquet([{files}], hive_partitioning = false, union_by_name = true)",
                                   out / new.name)
                moves.remove([rel(new), rel(day_dir / new.name)])
                moves.append([rel(out), rel(day_dir)])

    # -- the subscriber tables' held days ---------------------------------------------------------------
    def _held_state(self) -> list[dt.date]:
        """The days to measure again from the lake before this batch: none while the held tables are those of the
        last committed batch; after a restart or a failed batch, every day the checkpoint says is unwritten (the
        held rows of those days are gone, their records are in the lake)."""
        if self._held_batch == self.checkpoint["batch"]:
            return []
        if self._eng is not None:
            for name in SUBSCRIBER_STEPS:
                self._eng.drop(f"held_{name}")
        self._held_made = False
        self._held_days = set()
        self._held_batch = None
        return sorted(dt.date.fromisoformat(d) for d in self.checkpoint.get("unwritten") or [])

    def _hold(self, eng: Engine, days: list[dt.date], rebuild: list[dt.date]) -> None:
        """Each subscriber table's rows of ``days`` held in the engine: a day already held stays, one measured again
        whole (``rebuild``) starts empty, any other comes from its stored partition."""
        load = [d for d in days if d not in self._held_days and d not in rebuild]
        for name in SUBSCRIBER_STEPS:
            if not self._held_made:  # a held table of the stored table's shape
                eng.create_table(f"held_{name}", f"SELECT * FROM old_{name} WHERE {_in_days(load) if load else 'false'}")
            elif load:
                eng.replace_rows(f"held_{name}", f"SELECT * FROM old_{name} WHERE {_in_days(load)}")
        self._held_made = True
        self._held_days |= set(days)

    def _held_view(self, eng: Engine, name: str) -> None:
        """``name``: the held days and every other stored day."""
        if self._held_days:
            eng.create_view(name, f"SELECT * FROM held_{name} UNION ALL BY NAME SELECT * FROM old_{name} "
                                  f"WHERE NOT {_in_days(sorted(self._held_days))}")
        else:
            eng.create_view(name, f"SELECT * FROM old_{name}")

    def _stage_held(self, eng: Engine, stage: Path, days: list[dt.date], moves: list, rel) -> None:
        """The held ``days`` of every subscriber table staged as their partitions, to replace them in the commit."""
        for name in SUBSCRIBER_STEPS:
            out = stage / "measure" / name
            eng.create_table(f"w_{name}", f"SELECT * FROM held_{name} WHERE {_in_days(days)}")
            eng.write_parquet(f"w_{name}", out, ["day"])
            eng.drop(f"w_{name}")
            for d in days:
                if (out / f"day={d}").exists():  # a day without a row keeps its partition (it has none either)
                    moves.append([rel(out / f"day={d}"), rel(self.ws.measure / name / f"day={d}")])

    def _release_held(self, eng: Engine, keep: dt.date | None) -> None:
        """Written: the held days before ``keep`` (the clock's day) leave the engine."""
        gone = {d for d in self._held_days if keep is None or d < keep}
        if not gone:
            return
        self._held_days -= gone
        for name in SUBSCRIBER_STEPS:
            eng.create_table(f"held_{name}", f"SELECT * FROM held_{name} WHERE NOT {_in_days(sorted(gone))}")
            self._held_view(eng, name)

    def _measure_and_score(self, eng: Engine, stage: Path, lake_new: dict[str, list[dt.date]], rebuild: list[dt.date],
                           clock_day: dt.date | None, moves: list, rel, res: BatchResult) -> tuple[int, tuple[pa.Table, np.ndarray] | None]:
        """The measure steps over the touched (subscriber, day) pairs, and over every pair of the days to measure
        again (``rebuild``); their rows replace theirs in the held days; PM's periods staged."""
        ws = self.ws
        for t in MEASURE_TABLES:  # the stored tables, before this batch
            files = ws.measure_files(t)
            if self._old_files.get(t) != files:
                eng.register_parquet(f"old_{t}", files)
                self._old_files[t] = files
            if t in CELL_STEPS:
                eng.create_view(t, f"SELECT * FROM old_{t}")
        staged = {t: sorted(str(p) for p in (stage / "lake" / t).rglob("*.parquet")) for t in STREAM_TABLES}
        registered = set()
        for t in STREAM_TABLES:
            files = ws.lake_files(t) + staged[t]
            if files:
                eng.register_parquet(f"{t}_all", files)
                eng.create_view(t, f"SELECT * FROM {t}_all")
                registered.add(t)
        new_parts, again_parts = [], []
        if staged["xdr"]:
            eng.register_parquet("new_xdr", staged["xdr"])
            new_parts.append("SELECT DISTINCT subscriber_id, CAST(start_time AS DATE) AS day FROM new_xdr")
        if staged["radio_samples"]:
            eng.register_parquet("new_radio", staged["radio_samples"])
            new_parts.append("SELECT DISTINCT subscriber_id, CAST(sample_time AS DATE) AS day FROM new_radio")
        for t, col in (("xdr", "start_time"), ("radio_samples", "sample_time")):
            if rebuild and t in registered:
                again_parts.append(f"SELECT DISTINCT subscriber_id, CAST({col} AS DATE) AS day FROM {t}_all "
                                   f"WHERE {_in_days(rebuild, f'CAST({col} AS DATE)')}")
        steps: list[str] = []
        if new_parts:  # the pairs the batch's records touched: they are scored
            eng.create_table("touched_new", " UNION ".join(new_parts))
        if new_parts or again_parts:  # and every pair of a day measured again: they are measured
            eng.create_table("touched", " UNION ".join(new_parts + again_parts))
            steps += SUBSCRIBER_STEPS
        pairs = eng.row_count("touched") if steps else 0
        sub_days = sorted(set(lake_new.get("xdr", [])) | set(lake_new.get("radio_samples", [])) | set(rebuild))
        pm_days = sorted(set(lake_new.get("pm", [])))
        if pm_days:
            steps = list(CELL_STEPS) + steps

        # the inputs the measure steps read: every record of the touched pairs (and all PM, as measure reads it)
        for t, col in (("xdr", "start_time"), ("radio_samples", "sample_time")):
            if sub_days:
                eng.create_view(t, f"SELECT x.* FROM {t}_all x SEMI JOIN touched k ON x.subscriber_id = k.subscriber_id "
                                   f"AND CAST(x.{col} AS DATE) = k.day WHERE {_in_days(sub_days)}")
        if "pm" in registered and pm_days:
            # kpi_cell_15min of the batch's periods: their rows, and each cell's first report and longest
            # granularity over all PM (what the step's first_seen takes from every period) as one row without
            # counters for a cell first seen in another period. A period's rows depend on nothing else, so
            # the step's rows of these periods are the ones it gives over all PM.
            eng.register_parquet("new_pm", staged["pm"])
            eng.create_table("pm_periods", "SELECT DISTINCT period_start FROM new_pm")
            in_periods = "period_start IN (SELECT period_start FROM pm_periods)"
            self._pm_first(eng, res.batch)
            # one table, as the step reads its input three times
            eng.create_table("pm_batch", f"SELECT * FROM pm_all WHERE {_in_days(pm_days)} AND {in_periods} UNION ALL BY NAME "
                                         "SELECT cell_id, first_period AS period_start, granularity_s FROM pm_first "
                                         "WHERE first_period NOT IN (SELECT period_start FROM pm_periods)")
            eng.create_view("pm", "SELECT * FROM pm_batch")
        for name in steps:
            run_step(eng, self.steps[name])
        # the subscriber tables: the touched pairs' rows replace theirs in the held days
        if SUBSCRIBER_STEPS[0] in steps:
            self._hold(eng, sub_days, rebuild)
        for name in SUBSCRIBER_STEPS:
            if name in steps:
                eng.replace_rows(f"held_{name}", f"SELECT * FROM {name}", "touched", ("subscriber_id", "day"))
                eng.drop(name)
            self._held_view(eng, name)
        # the cell table: the batch's periods staged
        for name in CELL_STEPS:
            if name not in steps:  # its view over the stored files stays
                continue
            out = stage / "measure" / name
            eng.create_table(f"m_{name}", f"SELECT * FROM {name} WHERE {in_periods}")
            again = eng.query_row(f"SELECT count(*) FROM old_{name} WHERE {_in_days(pm_days)} AND {in_periods}")[0]
            crowded = any(len(list((ws.measure / name / f"day={d}").glob("*.parquet"))) + 1 >= self.compact_after for d in pm_days)
            if not again and not crowded:
                # periods the workspace has no row of (the usual case): their rows as one more file of the day
                eng.write_parquet(f"m_{name}", out, ["day"])
                for d in pm_days:
                    for f in sorted((out / f"day={d}").glob("*.parquet")):
                        moves.append([rel(f), rel(ws.measure / name / f"day={d}" / f"batch-{res.batch:09d}-{f.name}")])
                eng.drop(name)
                eng.create_view(name, f"SELECT * FROM m_{name} UNION ALL BY NAME SELECT * FROM old_{name}")
                continue
            # late PM of a period already stored (or a day of many files): the day written again, those
            # periods' rows replaced
            eng.create_table(f"m_{name}", f"SELECT * FROM m_{name} UNION ALL BY NAME SELECT * FROM old_{name} "
                                          f"WHERE {_in_days(pm_days)} AND NOT {in_periods}")
            eng.write_parquet(f"m_{name}", out, ["day"])
            for d in pm_days:
                if (out / f"day={d}").exists():
                    moves.append([rel(out / f"day={d}"), rel(ws.measure / name / f"day={d}")])
            eng.drop(name)
            eng.create_view(name, f"SELECT * FROM m_{name} UNION ALL BY NAME SELECT * FROM old_{name} WHERE NOT {_in_days(pm_days)}")
        for t in STREAM_TABLES:  # every record, for the scoring
            if t in registered:
                eng.create_view(t, f"SELECT * FROM {t}_all")
        if self.model is None or not new_parts or clock_day is None:
            return pairs, None
        return pairs, self._score(eng, clock_day + dt.timedelta(days=1), res)

    def _pm_first(self, eng: Engine, batch: int) -> None:
        """``pm_first``: each cell's first PM period and longest granularity over all PM, this batch's too. Kept
        in the engine from batch to batch: when it was made by the last committed batch, this batch's PM is
        added to it; otherwise (the first batch of this process, or one after a batch that failed) it is
        taken from all PM again. Taken from all PM by every batch, it cost 60-70 ms of a 1.4 s batch at 3,000
        subscribers and 16 days of PM, and grew with the days."""
        if self._pm_first_batch == self.checkpoint["batch"]:
            eng.create_table("pm_first", "SELECT cell_id, min(first_period) AS first_period, max(granularity_s) AS granularity_s FROM ("
                                         "SELECT * FROM pm_first UNION ALL SELECT cell_id, period_start, granularity_s FROM new_pm) "
                                         "GROUP BY cell_id")
        else:
            eng.create_table("pm_first", "SELECT cell_id, min(period_start) AS first_period, max(granularity_s) AS granularity_s "
                                         "FROM pm_all GROUP BY cell_id")
        self._pm_first_batch = batch

    def _score(self, eng: Engine, as_of: dt.date, res: BatchResult) -> tuple[pa.Table, np.ndarray] | None:
        """The touched subscribers' scores, and their rows of the model's input (for the alerts' drivers)."""
        from ..nps.features import base_requests, build_features
        from ..nps.model import CLASSES

        touched = eng.query_arrow("SELECT DISTINCT subscriber_id FROM touched_new")["subscriber_id"]
        req = base_requests(eng, as_of)
        req = req.filter(pc.is_in(req["subscriber_id"], touched))
        if not req.num_rows:
            return None
        x_table = build_features(eng, req, self.feats)
        x = self.model.encoder.matrix(x_table)
        pred = self.model.predict(x)
        p = pred["p"]
        res.scored = x_table.num_rows
        return pa.table({
            "subscriber_id": x_table["subscriber_id"], "as_of": x_table["as_of"],
            "p_detractor": p[:, 0], "p_passive": p[:, 1], "p_promoter": p[:, 2],
            "expected_score": pred["expected_score"], "predicted_class": np.array(CLASSES)[p.argmax(axis=1)],
            "cei_recent": x_table["cei_fast"], "batch": pa.array([res.batch] * x_table.num_rows, pa.int64()),
        }), x

    def _stage_scores(self, scores: pa.Table, x: np.ndarray, stage: Path, batch: int, moves: list, rel) -> pa.Table:
        """The stream's score table with the touched subscribers' rows replaced; alerts, with their drivers
        (TreeSHAP, as `opencem score` explains a likely detractor), for those who fell to detractor."""
        from ..nps.score import drivers

        old = self.state.scores_table()
        as_of = scores["as_of"][0].as_py()
        # the class before: the stream's own score, else the latest batch score before this day
        before = pa.nulls(scores.num_rows, pa.string())
        for prev in (_latest_batch_scores(self.ws, as_of), old):
            if prev is not None:
                at = pc.index_in(scores["subscriber_id"], value_set=prev["subscriber_id"])
                before = pc.coalesce(pc.take(prev["predicted_class"], at).cast(pa.string()), before)
        fallen = pc.and_(pc.equal(scores["predicted_class"], "detractor"), pc.not_equal(before, "detractor"))
        fell = np.flatnonzero(pc.fill_null(fallen, False).to_numpy(zero_copy_only=False))
        why = drivers(self.model.contributions(x[fell]), self.feats, np.arange(len(fell)), len(fell)) if len(fell) else {}
        rows = []
        for k, i in enumerate(fell):
            r = {c: scores[c][i].as_py() for c in ("subscriber_id", "p_detractor", "as_of", "cei_recent")}
            detail = {"previous_class": before[i].as_py(), "p_detractor": round(r["p_detractor"], 4),
                      "cei_recent": None if r["cei_recent"] is None else round(r["cei_recent"], 2),
                      **{c: why[c][k].as_py() for c in ("network_drivers", "nonnetwork_drivers")},
                      **{c: round(why[c][k].as_py(), 3) for c in ("network_push", "nonnetwork_push")}}
            rows.append({"alert_id": f"nps-detractor:{r['subscriber_id']}:{r['as_of']}:{batch}", "batch": batch,
                         "kind": "nps_detractor", "subscriber_id": r["subscriber_id"], "grid": None, "as_of": r["as_of"],
                         "event_time": None, "cause": None, "detail": json.dumps(detail, sort_keys=True)})
        if old is not None:
            keep = old.filter(pc.invert(pc.is_in(old["subscriber_id"], scores["subscriber_id"])))
            merged = pa.concat_tables([keep, scores.cast(keep.schema)])
        else:
            merged = scores
        merged = merged.sort_by("subscriber_id")
        out = stage / "scores"
        out.mkdir(parents=True, exist_ok=True)
        pq.write_table(merged, out / "part.parquet")
        moves.append([rel(out), rel(self.state.scores)])
        return pa.Table.from_pylist(rows, schema=OUTBOX_SCHEMA)

    # -- the loop ----------------------------------------------------------------------------------------
    def run(self, source, max_messages: int = 64, until_idle: bool = False, poll_seconds: float = 0.5,
            max_batches: int | None = None, after_batch: Callable[[BatchResult], None] | None = None,
            write_when_idle: bool = True) -> list[BatchResult]:
        """Micro-batches of what the source has, until it is idle (``until_idle``), ``max_batches`` or forever. The
        held days are written when they are due and the source is idle, and, with ``write_when_idle``, when
        ``until_idle`` ends the run (then the workspace's measure tables hold every record read)."""
        done: list[BatchResult] = []

        def record(r: BatchResult | None) -> None:
            if r is not None:
                done.append(r)
                if after_batch:
                    after_batch(r)

        while max_batches is None or len(done) < max_batches:
            msgs = source.poll(self.checkpoint["offset"], max_messages)
            if msgs:
                record(self.process(msgs))
                continue
            if until_idle:
                if write_when_idle:
                    record(self.flush())
                break
            if time.monotonic() - self._written_at >= self.flush_seconds:
                record(self.flush())
            time.sleep(poll_seconds)
        return done


def _in_days(days: list[dt.date], col: str = "day") -> str:
    return f"{col} IN ({', '.join(f'DATE {quote_literal(d.isoformat())}' for d in days)})"


def _latest_batch_scores(ws: Workspace, as_of: dt.date) -> pa.Table | None:
    """The latest `opencem score` partition before ``as_of``: the previous class of a subscriber the stream has
    not scored yet."""
    folder = ws.nps / "scores"
    parts = sorted(p for p in folder.glob("as_of=*") if p.name[6:] < as_of.isoformat()) if folder.is_dir() else []
    return pq.read_table(parts[-1] / "part.parquet", columns=["subscriber_id", "predicted_class"]) if parts else None
