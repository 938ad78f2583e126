"""Read 3GPP performance-measurement (PM) XML files into long Arrow tables.

Supported inputs
----------------
* TS 32.435 ``measCollecFile`` (type A and type C files; the name is not interpreted).
* TS 28.532 ``measDataFile`` (``fileSender@senderName``, ``measEntity`` instead of
  ``managedElement``).
* Both value forms: ``<measType p=".."/>`` + ``<r p="..">`` and the list form
  ``<measTypes>a b c</measTypes>`` + ``<measResults>1 2 3</measResults>``.
* Several ``measData`` / ``measInfo`` blocks per file, optional ``measInfoId`` and ``job``,
  ``<suspect>`` per ``measValue``, ``NIL`` values, comma-separated array counters
  (``0,1,2,3`` becomes one row per element with ``array_index`` 0..n-1).
* Any namespace (or none): elements are matched on their local names.
* gzip-compressed files (detected from the magic bytes, whatever the file name).

Output (:func:`read_pm_xml`) is one row per counter value, see :data:`SCHEMA`.

A file is rejected whole (:class:`PmFileRejected`, no partial table) when it is not well-formed
XML, is not a PM file, carries no measurement value, or breaks a structural rule that makes its
values impossible to attribute (see ``docs/pm-xml.md``). A single value that cannot be read as a
number is not a rejection: it becomes null and is counted in the table's schema metadata under
:data:`META_UNPARSEABLE` (``b"opencem.pm_xml.unparseable_values"``); the first warnings are kept
as a JSON list under :data:`META_WARNINGS`.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
from lxml import etree

from ..errors import InputError

__all__ = [
    "META_UNPARSEABLE",
    "META_WARNINGS",
    "SCHEMA",
    "PmFileRejected",
    "parse_duration_s",
    "parse_datetime_ms",
    "read_pm_xml",
]

SCHEMA = pa.schema(
    [
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("file_format", pa.string(), nullable=False),
        pa.field("sender_name", pa.string()),
        pa.field("managed_element", pa.string()),
        pa.field("meas_info_id", pa.string()),
        pa.field("job_id", pa.string()),
        pa.field("granularity_s", pa.int32(), nullable=False),
        pa.field("period_end", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("period_start", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("meas_obj_ldn", pa.string(), nullable=False),
        pa.field("counter", pa.string(), nullable=False),
        pa.field("array_index", pa.int32()),
        pa.field("value", pa.float64()),
        pa.field("suspect", pa.bool_(), nullable=False),
    ]
)

META_UNPARSEABLE = b"opencem.pm_xml.unparseable_values"
META_WARNINGS = b"opencem.pm_xml.warnings"
MAX_WARNINGS = 100

_ROOTS = {"measCollecFile": "32.435", "measDataFile": "28.532"}
_ENTITY_TAGS = ("managedElement", "measEntity")

# xs:float lexical space without INF / NaN (a counter is a finite number).
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_DURATION = re.compile(
    r"(?P<neg>-)?P(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<mi>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)
_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?P<tz>Z|[+-]\d{2}:?\d{2})?"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class PmFileRejected(ValueError):
    """A PM file that is rejected whole. ``str(exc)`` is one line: ``<file>: line <n>: <reason>``."""

    def __init__(self, source_file: str, reason: str, line: int | None = None):
        self.source_file = source_file
        self.reason = " ".join(str(reason).split())  # always one line
        self.line = line
        where = f"line {line}: " if line else ""
        super().__init__(f"{source_file}: {where}{self.reason}")


class _Reject(Exception):
    """Internal: carries reason and line up to read_pm_xml, which adds the file name."""

    def __init__(self, reason: str, line: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.line = line


def parse_duration_s(text: str) -> int:
    """Parse an xs:duration such as ``PT900S``, ``PT15M``, ``PT1H``, ``P1D`` into whole seconds.

    Years and months (calendar-dependent), negative, zero and fractional-second totals raise
    ``ValueError``.
    """
    s = (text or "").strip()
    m = _DURATION.fullmatch(s)
    if not m or s in ("P", "-P") or s.endswith("T"):
        raise InputError(f"not an xs:duration: {text!r}")
    if m["neg"]:
        raise InputError(f"negative duration: {text!r}")
    if (m["y"] and int(m["y"])) or (m["mo"] and int(m["mo"])):
        raise InputError(f"duration in years/months is not a fixed length: {text!r}")
    seconds = float(m["s"] or 0)
    if seconds != int(seconds):
        raise InputError(f"duration is not a whole number of seconds: {text!r}")
    total = int(m["d"] or 0) * 86400 + int(m["h"] or 0) * 3600 + int(m["mi"] or 0) * 60 + int(seconds)
    if total <= 0:
        raise InputError(f"duration must be positive: {text!r}")
    if total > 2**31 - 1:
        raise InputError(f"duration too long: {text!r}")
    return total


def parse_datetime_ms(text: str) -> tuple[int, bool]:
    """Parse an xs:dateTime into epoch milliseconds UTC.

    Returns ``(ms, had_offset)``; a time without ``Z`` / offset is taken as UTC and
    ``had_offset`` is False so the caller can warn.
    """
    s = (text or "").strip()
    m = _DATETIME.fullmatch(s)
    if not m:
        raise InputError(f"not an xs:dateTime: {text!r}")
    tz = m["tz"]
    body = s
    if tz and tz != "Z" and ":" not in tz:
        body = s[: -len(tz)] + tz[:3] + ":" + tz[3:]
    # datetime keeps microseconds; trim longer fractions.
    body = re.sub(r"(\.\d{6})\d+", r"\1", body)
    dt = datetime.fromisoformat(body)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return (dt - _EPOCH) // timedelta(milliseconds=1), tz is not None


def _local(tag) -> str:
    if not isinstance(tag, str):  # comments / processing instructions
        return ""
    return tag.rsplit("}", 1)[-1]


def _children(elem, name: str) -> list:
    return [c for c in elem if _local(c.tag) == name]


def _child(elem, name: str):
    for c in elem:
        if _local(c.tag) == name:
            return c
    return None


def _open(path: Path):
    f = open(path, "rb")
    if f.read(2) == b"\x1f\x8b":
        f.close()
        return gzip.open(path, "rb")
    f.seek(0)
    return f


class _Collector:
    """Column lists for one file plus warning bookkeeping."""

    def __init__(self) -> None:
        self.cols: dict[str, list] = {
            k: []
            for k in (
                "sender_name",
                "managed_element",
                "meas_info_id",
                "job_id",
                "granularity_s",
                "period_end",
                "period_start",
                "meas_obj_ldn",
                "counter",
                "array_index",
                "value",
                "suspect",
            )
        }
        self.unparseable = 0
        self.warnings: list[str] = []
        self.n_warnings = 0

    def warn(self, msg: str) -> None:
        self.n_warnings += 1
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(msg)

    def number(self, raw: str, where: str) -> float | None:
        if raw == "NIL":
            return None
        if _NUMBER.fullmatch(raw):
            return float(raw)
        self.unparseable += 1
        self.warn(f"{where}: unparseable value {raw!r} -> null")
        return None


def _parse_bool(text: str | None) -> bool | None:
    t = (text or "").strip().lower()
    if t in ("true", "1"):
        return True
    if t in ("false", "0", ""):
        return False
    return None


def _meas_info(mi, ctx: dict, out: _Collector) -> None:
    """Append the rows of one measInfo element (complete subtree) to ``out``."""
    line = mi.sourceline
    if ctx["entity_seen"] is False:
        raise _Reject(
            "measData has no managedElement / measEntity (no measured entity) before its measInfo", line
        )
    meas_info_id = mi.get("measInfoId")
    job = _child(mi, "job")
    job_id = job.get("jobId") if job is not None else None

    gp = _child(mi, "granPeriod")
    if gp is None:
        raise _Reject("measInfo without granPeriod", line)
    try:
        gran = parse_duration_s(gp.get("duration", ""))
    except ValueError as e:
        raise _Reject(f"granPeriod duration: {e}", gp.sourceline) from None
    try:
        end_ms, had_offset = parse_datetime_ms(gp.get("endTime", ""))
    except ValueError as e:
        raise _Reject(f"granPeriod endTime: {e}", gp.sourceline) from None
    if not had_offset:
        out.warn(f"line {gp.sourceline}: granPeriod endTime {gp.get('endTime')!r} has no UTC offset; taken as UTC")
    start_ms = end_ms - gran * 1000

    # Counter names by position p (list form: 1..n).
    types: dict[int, str] = {}
    list_types = _children(mi, "measTypes")
    p_types = _children(mi, "measType")
    if list_types and p_types:
        raise _Reject("measInfo mixes <measTypes> and <measType p>", line)
    if len(list_types) > 1:
        raise _Reject("measInfo has several <measTypes> elements", line)
    if list_types:
        for i, name in enumerate((list_types[0].text or "").split(), start=1):
            types[i] = name
    for mt in p_types:
        p = mt.get("p", "")
        name = (mt.text or "").strip()
        if not p.isdigit() or int(p) < 1:
            raise _Reject(f"measType has no valid p attribute (p={p!r})", mt.sourceline)
        if not name:
            raise _Reject(f"measType p={p} has no counter name", mt.sourceline)
        if int(p) in types:
            raise _Reject(f"duplicate measType p={p}", mt.sourceline)
        types[int(p)] = name

    cols = out.cols
    for mv in _children(mi, "measValue"):
        ldn = mv.get("measObjLdn")
        if ldn is None or not ldn.strip():
            raise _Reject("measValue without measObjLdn", mv.sourceline)
        susp_el = _child(mv, "suspect")
        suspect = False
        if susp_el is not None:
            b = _parse_bool(susp_el.text)
            if b is None:
                out.warn(f"line {susp_el.sourceline}: suspect {susp_el.text!r} is not a boolean; taken as true")
                b = True
            suspect = b

        results: list[tuple[int, str, int]] = []  # (p, raw text, line)
        list_results = _children(mv, "measResults")
        r_elems = _children(mv, "r")
        if list_results and r_elems:
            raise _Reject("measValue mixes <measResults> and <r p>", mv.sourceline)
        if len(list_results) > 1:
            raise _Reject("measValue has several <measResults> elements", mv.sourceline)
        if list_results:
            items = (list_results[0].text or "").split()
            if len(items) != len(types):
                raise _Reject(
                    f"measResults has {len(items)} values but measInfo defines {len(types)} counters",
                    list_results[0].sourceline,
                )
            results = [(i, raw, list_results[0].sourceline) for i, raw in enumerate(items, start=1)]
        seen: set[int] = set()
        for r in r_elems:
            p = r.get("p", "")
            if not p.isdigit() or int(p) < 1:
                raise _Reject(f"<r> has no valid p attribute (p={p!r})", r.sourceline)
            if int(p) in seen:
                raise _Reject(f"duplicate <r p={p}> in measValue {ldn!r}", r.sourceline)
            seen.add(int(p))
            results.append((int(p), (r.text or "").strip(), r.sourceline))

        for p, raw, rline in results:
            counter = types.get(p)
            if counter is None:
                raise _Reject(f"<r p={p}> has no measType p={p} in its measInfo", rline)
            where = f"line {rline}: {counter} @ {ldn}"
            if "," in raw:
                elements = [(i, out.number(x.strip(), f"{where}[{i}]")) for i, x in enumerate(raw.split(","))]
            else:
                elements = [(None, out.number(raw, where))]
            for idx, val in elements:
                cols["sender_name"].append(ctx["sender"])
                cols["managed_element"].append(ctx["entity"])
                cols["meas_info_id"].append(meas_info_id)
                cols["job_id"].append(job_id)
                cols["granularity_s"].append(gran)
                cols["period_end"].append(end_ms)
                cols["period_start"].append(start_ms)
                cols["meas_obj_ldn"].append(ldn)
                cols["counter"].append(counter)
                cols["array_index"].append(idx)
                cols["value"].append(val)
                cols["suspect"].append(suspect)


def _read(path: Path, out: _Collector) -> str:
    """Stream-parse ``path`` into ``out``; returns the file format. Raises _Reject."""
    fmt = None
    ctx: dict = {"sender": None, "entity": None, "entity_seen": None}
    depth = 0
    with _open(path) as f:
        events = etree.iterparse(
            f,
            events=("start", "end"),
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            remove_comments=True,
            remove_pis=True,
            huge_tree=True,
        )
        for event, elem in events:
            name = _local(elem.tag)
            if event == "start":
                depth += 1
                if depth == 1:
                    fmt = _ROOTS.get(name)
                    if fmt is None:
                        raise _Reject(
                            f"root element <{name}> is neither measCollecFile (TS 32.435) nor measDataFile (TS 28.532)",
                            elem.sourceline,
                        )
                elif depth == 2 and name == "measData":
                    ctx["entity"] = None
                    ctx["entity_seen"] = False
                continue
            depth -= 1
            if name == "fileSender" and depth == 2:
                ctx["sender"] = elem.get("senderName") or elem.get("localDn")
            elif name in _ENTITY_TAGS and depth == 2:
                ctx["entity"] = elem.get("localDn") or elem.get("userLabel")
                ctx["entity_seen"] = True
            elif name == "measInfo" and depth == 2:
                _meas_info(elem, ctx, out)
                elem.clear()
                parent = elem.getparent()
                while elem.getprevious() is not None:
                    del parent[0]
            elif name == "measData" and depth == 1:
                elem.clear()
    return fmt  # type: ignore[return-value]


def read_pm_xml(path: str | os.PathLike) -> pa.Table:
    """Read one TS 32.435 / TS 28.532 PM XML file (optionally gzip) into a long table (:data:`SCHEMA`).

    Raises :class:`PmFileRejected` for a file that must be rejected whole; ``OSError`` if the
    file cannot be opened. Unparseable single values become null and are counted in
    ``table.schema.metadata[META_UNPARSEABLE]``, the first warnings under ``META_WARNINGS``.
    """
    path = Path(path)
    name = path.name
    out = _Collector()
    try:
        fmt = _read(path, out)
    except _Reject as e:
        raise PmFileRejected(name, e.reason, e.line) from None
    except etree.XMLSyntaxError as e:
        line = e.lineno if getattr(e, "lineno", None) else None
        msg = getattr(e, "msg", None) or str(e)
        msg = re.sub(r",? line \d+, column \d+\s*$", "", msg)
        raise PmFileRejected(name, f"not well-formed XML: {msg}", line) from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise PmFileRejected(name, f"broken gzip stream: {e}") from None
    n = len(out.cols["counter"])
    if n == 0:
        raise PmFileRejected(name, "no measurement values (no measValue with results)")
    c = out.cols
    arrays = [
        pa.array([name] * n, pa.string()),
        pa.array([fmt] * n, pa.string()),
        pa.array(c["sender_name"], pa.string()),
        pa.array(c["managed_element"], pa.string()),
        pa.array(c["meas_info_id"], pa.string()),
        pa.array(c["job_id"], pa.string()),
        pa.array(c["granularity_s"], pa.int32()),
        pa.array(c["period_end"], pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
        pa.array(c["period_start"], pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
        pa.array(c["meas_obj_ldn"], pa.string()),
        pa.array(c["counter"], pa.string()),
        pa.array(c["array_index"], pa.int32()),
        pa.array(c["value"], pa.float64()),
        pa.array(c["suspect"], pa.bool_()),
    ]
    meta = {
        META_UNPARSEABLE: str(out.unparseable).encode(),
        META_WARNINGS: json.dumps(out.warnings, ensure_ascii=False).encode(),
    }
    return pa.Table.from_arrays(arrays, schema=SCHEMA.with_metadata(meta))
