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
* ``kafka://HOST:PORT[,HOST:PORT...]?topic=NAME``: an Apache Kafka topic (or a broker that speaks its
  protocol); the record key is the table, the value the Parquet bytes. The offset is the last offset read
  in each partition, ``<partition>:<offset>`` joined by commas. The consumer never commits to the broker.
  Parameters with a dot in their name are client settings (``&security.protocol=SASL_SSL&sasl.mechanism=...``).
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
DEFAULT_KAFKA_TOPIC = "opencem"
# the client's own log lines (a refused connection, many times a second) stay out of the terminal: what
# fails reaches the user as one line naming the URL
KAFKA_CLIENT = {"socket.connection.setup.timeout.ms": 10_000, "log_level": 2}


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


# -- Apache Kafka ---------------------------------------------------------------------------------------
def _kafka_target(url: str) -> tuple[dict, str, dict]:
    """(client settings, topic, the query's other parameters) of ``kafka://HOST:PORT[,HOST:PORT]?topic=T``. A
    parameter whose name has a dot is a setting of the client, librdkafka's name (``security.protocol=SASL_SSL``)."""
    u = urllib.parse.urlparse(url)
    q = {k: v[0] for k, v in urllib.parse.parse_qs(u.query).items()}
    if not u.netloc:
        raise InputError(f"{url}: a Kafka source is kafka://HOST:PORT[,HOST:PORT...]?topic=NAME")
    conf = {"bootstrap.servers": u.netloc, **KAFKA_CLIENT, **{k: q.pop(k) for k in list(q) if "." in k}}
    return conf, q.pop("topic", DEFAULT_KAFKA_TOPIC), q


def _kafka_reason(e: Exception) -> str:
    return e.args[0].str() if e.args and hasattr(e.args[0], "str") else str(e)


def _kafka_offsets(offset: str | None, url: str) -> dict[int, int]:
    """``"0:41,1:17"`` -> {0: 41, 1: 17}: the last offset read in each partition."""
    try:
        return {int(p): int(o) for p, o in (part.split(":") for part in offset.split(","))} if offset else {}
    except ValueError:
        raise InputError(f"{url}: {offset!r} is not a Kafka offset of this stream (<partition>:<offset>,...)") from None


class KafkaSource:
    """Every partition of one topic, read after the offsets the stream committed (assigned, not subscribed:
    no consumer group decides what this stream reads). Records of different partitions come in the order
    the broker hands them out; a batch measures every record of the subscriber-days it touches, so the
    order between tables and partitions does not change what it computes."""

    WAIT_S = 2.0  # the longest a poll waits for a first record; it returns as soon as records come

    def __init__(self, url: str) -> None:
        from confluent_kafka import Consumer, KafkaException

        self.url = url
        conf, self.topic, _ = _kafka_target(url)
        try:
            self.consumer = Consumer({"group.id": "opencem-stream", "fetch.wait.max.ms": 50, **conf, "enable.auto.commit": False,
                                      "enable.auto.offset.store": False, "auto.offset.reset": "earliest"})
        except KafkaException as e:
            raise InputError(f"{url}: {_kafka_reason(e)}") from None
        self.position: dict[int, int] | None = None  # the next offset of each assigned partition

    def _partitions(self) -> list[int]:
        from confluent_kafka import KafkaException

        try:
            meta = self.consumer.list_topics(self.topic, timeout=10)
        except KafkaException as e:
            raise InputError(f"{self.url}: cannot reach Kafka ({_kafka_reason(e)})") from None
        topic = meta.topics.get(self.topic)
        return sorted(topic.partitions) if topic is not None and topic.error is None else []

    def poll(self, after: str | None, max_messages: int) -> list[Message]:
        from confluent_kafka import KafkaError, TopicPartition

        read = _kafka_offsets(after, self.url)
        want = {p: read.get(p, -1) + 1 for p in self._partitions()}
        if not want:
            return []  # the topic is not there yet
        if want != self.position:  # a restart, or a caller that did not take what was read: start again there
            self.consumer.assign([TopicPartition(self.topic, p, o) for p, o in want.items()])
            self.position = want
        # the first record as soon as it comes (consume() would wait for all it was asked for), then what the
        # client has fetched already: a busy topic must not hold the batch open
        first = self.consumer.poll(self.WAIT_S)
        records = [] if first is None else [first]
        if records and max_messages > 1:
            records += self.consumer.consume(max_messages - 1, timeout=0)
        out: list[Message] = []
        for r in records:
            err = r.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                raise InputError(f"{self.url}: {err.str()}")
            p, o = r.partition(), r.offset()
            read[p] = o
            self.position[p] = o + 1
            where = f"{self.url} partition {p} offset {o}"
            table = (r.key() or b"").decode()
            sent = dict(r.headers() or []).get("sent_at")
            out.append(Message(",".join(f"{k}:{v}" for k, v in sorted(read.items())), _check_table(table, where),
                               r.value() or b"", float(sent) if sent else None))
        return out

    def close(self) -> None:
        self.consumer.close()


class KafkaSink:
    """Produces each message as one record (key: the table); the topic is made with ``partitions`` (default 1,
    which keeps the replay's time order) when the broker does not have it."""

    def __init__(self, url: str) -> None:
        from confluent_kafka import KafkaException, Producer
        from confluent_kafka.admin import AdminClient, NewTopic

        conf, self.topic, q = _kafka_target(url)
        self.url = url
        try:
            admin = AdminClient(conf)
            if self.topic not in admin.list_topics(timeout=10).topics:
                made = admin.create_topics([NewTopic(self.topic, num_partitions=int(q.get("partitions", 1)), replication_factor=1)])
                made[self.topic].result(30)
        except KafkaException as e:
            raise InputError(f"{url}: cannot reach Kafka or make topic {self.topic!r} ({_kafka_reason(e)})") from None
        self.producer = Producer({"linger.ms": 5, "message.max.bytes": 64 << 20, **conf})
        self.failed: list[str] = []

    def _delivered(self, err, _record) -> None:
        if err is not None:
            self.failed.append(err.str())

    def send(self, table: str, data: bytes) -> None:
        self.producer.produce(self.topic, key=_check_table(table, "replay"), value=data,
                              headers={"sent_at": repr(time.time())}, on_delivery=self._delivered)
        self.producer.poll(0)

    def close(self) -> None:
        left = self.producer.flush(60)
        if left or self.failed:
            raise InputError(f"{self.url}: {left} records not delivered; {'; '.join(self.failed[:3])}")


# -- by URL -------------------------------------------------------------------------------------------------
def _kind(url: str) -> tuple[str, str]:
    if url.startswith("redis://"):
        return "redis", url
    if url.startswith("nats://"):
        return "nats", url
    if url.startswith("kafka://"):
        return "kafka", url
    if url.startswith("spool:"):
        return "spool", url[len("spool:"):]
    if url.startswith("file://"):
        return "spool", urllib.parse.urlparse(url).path
    if "://" in url:
        raise InputError(f"--source {url}: unknown kind of source (spool:DIR, a folder, redis://, nats://, kafka://)")
    return "spool", url


def open_source(url: str):
    kind, where = _kind(url)
    return {"spool": SpoolSource, "redis": RedisSource, "nats": NatsSource, "kafka": KafkaSource}[kind](Path(where) if kind == "spool" else where)


def open_sink(url: str):
    kind, where = _kind(url)
    return {"spool": SpoolSink, "redis": RedisSink, "nats": NatsSink, "kafka": KafkaSink}[kind](Path(where) if kind == "spool" else where)
