"""Where micro-batches come from, and where `opencem synth-replay` puts them.

A *message* is one chunk of one input table's records as Parquet bytes (the contract's columns), with the
table's name and the source's offset of the message. Every source is read from an offset the stream keeps
in its own checkpoint, never from the broker's consumer state: the checkpoint commits the offset with the
state it produced, so a restart reads each message once whatever the broker remembers.

Sources (``--source URL``):

* ``spool:DIR`` or a plain folder (the default, no server): files ``DIR/<sequence>-<table>.parquet``,
  written whole then renamed into place (a writer never leaves a half file under that name), the sequence
  0, 1, 2, ... without gaps (the replay numbers them so). The offset is the last file name read.
* ``redis://HOST:PORT[/DB]?stream=KEY``: a Redis Stream; each entry has fields ``table`` and ``data``.
  The offset is the entry id.
* ``nats://HOST:PORT?stream=NAME&subject=PREFIX``: a NATS JetStream stream; subject ``PREFIX.<table>``,
  the message body is the Parquet bytes. The offset is the stream sequence.
* ``kafka://...``: not in this cut (a one-line error says so).
"""

from __future__ import annotations

import asyncio
import os
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

STREAM_TABLES = ("xdr", "radio_samples", "pm")  # the tables a stream carries; the others come with `opencem measure`
DEFAULT_REDIS_STREAM = "opencem"
DEFAULT_NATS_STREAM, DEFAULT_NATS_SUBJECT = "OPENCEM", "opencem"


@dataclass
class Message:
    offset: str  # the source's position of this message (a file name, an entry id, a sequence number)
    table: str
    data: bytes  # Parquet bytes
    sent_at: float | None = None  # when the producer made it available (epoch seconds), if known


def _check_table(table: str, where: str) -> str:
    if table not in STREAM_TABLES:
        raise InputError(f"{where}: table {table!r} cannot be streamed (use one of {', '.join(STREAM_TABLES)})")
    return table


# -- the spool folder ---------------------------------------------------------------------------------
class SpoolSource:
    """Files ``<sequence>-<table>.parquet`` in a folder, read in sequence order after the offset.

    The sequence numbers run 0, 1, 2, ... without a gap: a file is read only after every file before it.
    A folder listing is not a snapshot (a file renamed into place while the folder is being listed may be
    missed while a later one is seen), so a gap means "not seen yet", never "skip it"."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(f"{self.folder}: the spool folder does not exist")
        self.url = f"spool:{self.folder}"

    def poll(self, after: str | None, max_messages: int) -> list[Message]:
        files = {}
        for e in os.scandir(self.folder):
            if not e.name.endswith(".parquet") or e.name.startswith("."):
                continue
            seq, _, rest = e.name[: -len(".parquet")].partition("-")
            if not seq.isdigit() or not rest:
                raise InputError(f"{self.folder / e.name}: a spool file is named <sequence>-<table>.parquet (e.g. 000000000007-xdr.parquet)")
            files[int(seq)] = e.name
        expected = int(after.split("-", 1)[0]) + 1 if after else 0
        out = []
        while expected in files and len(out) < max_messages:
            name = files[expected]
            path = self.folder / name
            table = name[: -len(".parquet")].split("-", 1)[1]
            out.append(Message(name, _check_table(table, str(path)), path.read_bytes(), path.stat().st_mtime))
            expected += 1
        return out

    def close(self) -> None:
        pass


class SpoolSink:
    """Writes the spool's files, numbering on from the folder's ``.sequence`` file (so that numbers are never
    used twice, even after the consumed files were removed)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.counter = self.folder / ".sequence"
        existing = [int(p.name.split("-", 1)[0]) for p in self.folder.glob("*.parquet") if p.name.split("-", 1)[0].isdigit()]
        kept = int(self.counter.read_text()) if self.counter.exists() else 0
        self.seq = max([kept, *(n + 1 for n in existing)])

    def send(self, table: str, data: bytes) -> None:
        name = f"{self.seq:012d}-{_check_table(table, 'replay')}.parquet"
        tmp = self.folder / f".{name}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.write_bytes(data)
        os.replace(tmp, self.folder / name)  # readers see the whole file or nothing
        self.seq += 1

    def close(self) -> None:
        tmp = self.folder / f".sequence.tmp-{uuid.uuid4().hex[:8]}"
        tmp.write_text(f"{self.seq}\n")
        os.replace(tmp, self.counter)


# -- Redis Streams --------------------------------------------------------------------------------------
def _redis(url: urllib.parse.ParseResult):
    import redis

    db = int(url.path.strip("/") or 0)
    return redis.Redis(host=url.hostname or "127.0.0.1", port=url.port or 6379, db=db)


class RedisSource:
    def __init__(self, url: str) -> None:
        u = urllib.parse.urlparse(url)
        self.key = urllib.parse.parse_qs(u.query).get("stream", [DEFAULT_REDIS_STREAM])[0]
        self.client = _redis(u)
        self.url = url

    def poll(self, after: str | None, max_messages: int) -> list[Message]:
        # XRANGE with an exclusive start: the entries after the committed one, in order
        start = f"({after}" if after else "-"
        entries = self.client.xrange(self.key, min=start, max="+", count=max_messages)
        out = []
        for entry_id, fields in entries:
            eid = entry_id.decode()
            table = fields.get(b"table", b"").decode()
            sent = fields.get(b"sent_at")
            out.append(Message(eid, _check_table(table, f"{self.url} entry {eid}"), fields.get(b"data", b""),
                               float(sent) if sent else None))
        return out

    def close(self) -> None:
        self.client.close()


class RedisSink:
    def __init__(self, url: str) -> None:
        u = urllib.parse.urlparse(url)
        self.key = urllib.parse.parse_qs(u.query).get("stream", [DEFAULT_REDIS_STREAM])[0]
        self.client = _redis(u)

    def send(self, table: str, data: bytes) -> None:
        self.client.xadd(self.key, {"table": _check_table(table, "replay"), "data": data, "sent_at": repr(time.time())})

    def close(self) -> None:
        self.client.close()


# -- NATS JetStream -------------------------------------------------------------------------------------
class _Nats:
    """A NATS connection on its own event loop, used from synchronous code."""

    def __init__(self, url: str) -> None:
        import nats

        u = urllib.parse.urlparse(url)
        q = urllib.parse.parse_qs(u.query)
        self.stream = q.get("stream", [DEFAULT_NATS_STREAM])[0]
        self.subject = q.get("subject", [DEFAULT_NATS_SUBJECT])[0]
        self.loop = asyncio.new_event_loop()
        server = f"nats://{u.hostname or '127.0.0.1'}:{u.port or 4222}"
        try:
            self.nc = self.loop.run_until_complete(nats.connect(server, connect_timeout=5, max_reconnect_attempts=3))
        except Exception as e:  # noqa: BLE001 - the client raises several kinds; one line says which server
            self.loop.close()
            raise InputError(f"{url}: cannot connect to NATS ({type(e).__name__}: {e})") from None
        self.js = self.nc.jetstream()
        self.run(self._ensure_stream())

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    async def _ensure_stream(self) -> None:
        from nats.js.errors import NotFoundError

        try:
            await self.js.stream_info(self.stream)
        except NotFoundError:
            await self.js.add_stream(name=self.stream, subjects=[f"{self.subject}.>"])

    def close(self) -> None:
        try:
            self.run(self.nc.drain())
        finally:
            self.loop.close()


class NatsSource(_Nats):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url

    def poll(self, after: str | None, max_messages: int) -> list[Message]:
        return self.run(self._poll(int(after) if after else 0, max_messages))

    async def _poll(self, after: int, max_messages: int) -> list[Message]:
        from nats.js.errors import NotFoundError

        info = await self.js.stream_info(self.stream)
        last = info.state.last_seq
        out = []
        seq = max(after + 1, info.state.first_seq)
        while seq <= last and len(out) < max_messages:
            try:
                msg = await self.js.get_msg(self.stream, seq)
            except NotFoundError:  # deleted from the stream
                seq += 1
                continue
            table = msg.subject.rsplit(".", 1)[-1]
            sent = (msg.headers or {}).get("sent_at")
            out.append(Message(str(seq), _check_table(table, f"{self.url} sequence {seq}"), msg.data or b"",
                               float(sent) if sent else None))
            seq += 1
        return out


class NatsSink(_Nats):
    def send(self, table: str, data: bytes) -> None:
        self.run(self.js.publish(f"{self.subject}.{_check_table(table, 'replay')}", data, headers={"sent_at": repr(time.time())}))


# -- by URL -------------------------------------------------------------------------------------------------
def _kind(url: str) -> tuple[str, str]:
    if url.startswith("redis://"):
        return "redis", url
    if url.startswith("nats://"):
        return "nats", url
    if url.startswith("kafka://"):
        raise InputError(f"{url}: Kafka is not supported by this version of `opencem stream` (use a spool folder, redis:// or nats://)")
    if url.startswith("spool:"):
        return "spool", url[len("spool:"):]
    if url.startswith("file://"):
        return "spool", urllib.parse.urlparse(url).path
    if "://" in url:
        raise InputError(f"--source {url}: unknown kind of source (spool:DIR, a folder, redis://, nats://)")
    return "spool", url


def open_source(url: str):
    kind, where = _kind(url)
    return {"spool": SpoolSource, "redis": RedisSource, "nats": NatsSource}[kind](Path(where) if kind == "spool" else where)


def open_sink(url: str):
    kind, where = _kind(url)
    return {"spool": SpoolSink, "redis": RedisSink, "nats": NatsSink}[kind](Path(where) if kind == "spool" else where)
