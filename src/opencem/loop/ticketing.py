"""Send TMF documents to a ticketing system over HTTP, exactly once per plan, with the standard library only.

Endpoint convention: ``endpoint`` is the TMF API root including the version, and the resource collection is
appended, as in the TMF specs' ``servers`` + ``paths``::

    send_tickets(tickets, "https://oss.example/tmf-api/troubleTicket/v5", ledger)            # POST .../troubleTicket
    send_tickets(problems, "https://oss.example/tmf-api/serviceProblemManagement/v5", ledger,
                 kind="serviceProblem")                                                     # POST .../serviceProblem

Exactly once: every request carries ``Idempotency-Key`` = sha256 of ``opencem/<kind>/<plan id>`` (the plan id
is the document's ``externalIdentifier`` owned by OpenCEM), so a retry or a re-run sends the same key for the
same plan and kind. After each success the ledger (JSON: key -> id, href, plan, kind) is rewritten
atomically; plans already in it are not sent again. Use one ledger per target system.

:class:`TicketServer` is a small real TMF-style HTTP server for tests and demos.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import http.client
import json
import logging
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from opencem.engine.files import atomic_write_text
from opencem.loop.tmf import OWNER

log = logging.getLogger(__name__)

MAX_WAIT = 60.0  # seconds: cap for a backoff step or a server's Retry-After
API_ROOTS = {"troubleTicket": "/tmf-api/troubleTicket/v5", "serviceProblem": "/tmf-api/serviceProblemManagement/v5"}
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class TicketError(RuntimeError):
    """The ticketing system refused a document (a 4xx other than 429), or answered without an id."""


@dataclass
class SendReport:
    sent: int = 0  # accepted by the server in this run (created, or an idempotent replay of an earlier create)
    skipped: int = 0  # already in the ledger, not sent
    failed: int = 0  # retries exhausted (connection errors, timeouts, 5xx, 429)
    ids: dict[str, str] = field(default_factory=dict)  # plan id -> server id, for sent and skipped plans
    errors: dict[str, str] = field(default_factory=dict)  # plan id -> last error, for failed plans
    retries: int = 0  # repeated attempts in this run


def plan_id_of(doc: dict) -> str:
    """The plan id carried in ``externalIdentifier`` (the OpenCEM-owned entry, else the first with an id)."""
    ids = [e for e in doc.get("externalIdentifier") or [] if isinstance(e, dict) and e.get("id")]
    ours = [e for e in ids if e.get("owner") == OWNER] or ids
    if not ours:
        raise ValueError(f"document {doc.get('name', '?')!r} has no externalIdentifier id to make it idempotent")
    return str(ours[0]["id"])


def idempotency_key(doc: dict, kind: str = "troubleTicket") -> str:
    """Stable key for one plan and resource kind: the same plan always gets the same key."""
    return hashlib.sha256(f"opencem/{kind}/{plan_id_of(doc)}".encode()).hexdigest()


def _load_ledger(ledger: Path) -> dict[str, dict]:
    if not ledger.exists():
        return {}
    try:
        data = json.loads(ledger.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"ticket ledger {ledger} is unreadable ({exc}); fix or move it: sending without it could duplicate tickets") from None
    if not isinstance(data, dict):
        raise ValueError(f"ticket ledger {ledger} is not a JSON object")
    return data


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # a POST must not turn into a GET elsewhere
        return None


def _opener(url: str) -> urllib.request.OpenerDirector:
    handlers: list[Any] = [_NoRedirect()]
    if urllib.parse.urlsplit(url).hostname in _LOOPBACK:
        handlers.append(urllib.request.ProxyHandler({}))  # never send loopback traffic through a proxy
    return urllib.request.build_opener(*handlers)


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return min(MAX_WAIT, float(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return min(MAX_WAIT, max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds()))


def _server_message(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        text = str(data.get("message") or data.get("reason") or data.get("error") or text)
    text = " ".join(text.split())
    return (text[:197] + "...") if len(text) > 200 else (text or "no message")


def send_tickets(docs: list[dict], endpoint: str, ledger: Path, kind: str = "troubleTicket",
                 retries: int = 4, backoff: float = 0.5, timeout: float = 10) -> SendReport:
    """POST each document to ``{endpoint}/{kind}`` once (see the module docstring).

    Connection errors, timeouts, 5xx and 429 are retried up to ``retries`` times, waiting ``backoff * 2**n``
    seconds (or the server's ``Retry-After``, capped at ``MAX_WAIT``); a plan still failing is counted in
    ``failed`` and the next one is tried. Any other 4xx raises :class:`TicketError` at once, naming the plan,
    the status and the server's message; plans sent before it are already in the ledger.
    """
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", kind):
        raise ValueError(f"kind must be a TMF resource name such as troubleTicket, got {kind!r}")
    parts = urllib.parse.urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"endpoint must be an http(s) URL of a TMF API root, got {endpoint!r}")
    url = f"{endpoint.rstrip('/')}/{kind}"
    ledger = Path(ledger)
    book = _load_ledger(ledger)
    opener = _opener(url)
    report = SendReport()
    for doc in docs:
        plan_id = plan_id_of(doc)
        key = idempotency_key(doc, kind)
        if key in book:
            report.skipped += 1
            report.ids[plan_id] = str(book[key].get("id"))
            continue
        body = json.dumps(doc, sort_keys=True, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json", "Idempotency-Key": key}
        last = ""
        for attempt in range(retries + 1):
            if attempt:
                report.retries += 1
            wait = None
            try:
                request = urllib.request.Request(url, data=body, headers=headers, method="POST")
                with opener.open(request, timeout=timeout) as resp:
                    status, payload, location = resp.status, resp.read(), resp.headers.get("Location")
            except urllib.error.HTTPError as exc:
                try:
                    message = _server_message(exc.read() or b"")
                except (OSError, http.client.HTTPException):
                    message = "no message"
                if exc.code != 429 and exc.code < 500:
                    raise TicketError(f"{kind} for plan {plan_id} rejected by {url}: HTTP {exc.code} {exc.reason}: {message}") from None
                last, wait = f"HTTP {exc.code} {exc.reason}: {message}", _retry_after(exc.headers)
            except (OSError, http.client.HTTPException) as exc:  # refused, reset, dropped, timed out
                last = f"{type(exc).__name__}: {exc}"
            else:
                try:
                    created = json.loads(payload) if payload else {}
                except ValueError:
                    created = {}
                ticket_id = created.get("id") if isinstance(created, dict) else None
                if not ticket_id and location:
                    ticket_id = location.rstrip("/").rsplit("/", 1)[-1]
                if not ticket_id:
                    raise TicketError(f"{kind} for plan {plan_id}: {url} answered HTTP {status} without a resource id")
                href = (created.get("href") if isinstance(created, dict) else None) or location or f"{url}/{ticket_id}"
                book[key] = {"id": str(ticket_id), "href": str(href), "plan": plan_id, "kind": kind, "status": status}
                atomic_write_text(ledger, json.dumps(book, indent=2, sort_keys=True) + "\n")
                report.sent += 1
                report.ids[plan_id] = str(ticket_id)
                break
            if attempt < retries:
                delay = wait if wait is not None else min(MAX_WAIT, backoff * 2**attempt)
                log.info("%s for plan %s: %s; retry %d/%d in %.2fs", kind, plan_id, last, attempt + 1, retries, delay)
                time.sleep(delay)
        else:
            report.failed += 1
            report.errors[plan_id] = last
            log.warning("%s for plan %s not sent after %d attempts: %s", kind, plan_id, retries + 1, last)
    return report


# ---------------------------------------------------------------------------------------------- server


_TYPES = {"troubleTicket": "TroubleTicket", "serviceProblem": "ServiceProblem"}
_REQUIRED = {"troubleTicket": ("description", "severity", "ticketType"),
             "serviceProblem": ("category", "priority", "description", "reason", "originatorParty")}
_PREFIX = {"troubleTicket": "TT", "serviceProblem": "SP"}


class _Handler(BaseHTTPRequestHandler):
    server_version = "OpenCEM-TicketServer/1"

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass

    def do_POST(self):  # noqa: N802 - http.server's naming
        self.server.app._post(self)

    def do_GET(self):  # noqa: N802
        self.server.app._get(self)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # clients that gave up (timeouts) are expected in tests
        pass


class TicketServer:
    """A TMF621/TMF656-style ticketing server on 127.0.0.1 (ephemeral port), for tests and demos.

    ``POST {url}/tmf-api/troubleTicket/v5/troubleTicket`` and ``.../serviceProblemManagement/v5/serviceProblem``
    create a resource (201, with ``id``, ``href``, ``status``, ``creationDate`` and a ``Location`` header); a
    repeated ``Idempotency-Key`` returns the existing resource with 200 and ``Idempotent-Replayed: true``.
    ``GET`` on a collection lists it (``offset``/``limit``, ``X-Total-Count``), ``GET .../{id}`` returns one.
    A body that is not JSON, has the wrong ``@type`` or lacks a mandatory field gets a 400 TMF error.

    Fault injection, settable at any time: ``fail_next`` POSTs answered 503 (with ``Retry-After: retry_after``
    if set); ``drop_next`` POSTs whose resource is created and whose connection is then closed without an
    answer (a lost response); ``delay_next`` POSTs held ``delay`` seconds before being processed.
    """

    def __init__(self, *, fail_next: int = 0, drop_next: int = 0, delay_next: int = 0, delay: float = 0.0,
                 retry_after: str | None = None):
        self.fail_next, self.drop_next, self.delay_next, self.delay, self.retry_after = fail_next, drop_next, delay_next, delay, retry_after
        self.posts = 0  # POST requests received
        self.handled = 0  # POST requests fully processed (answered, failed or dropped)
        self._lock = threading.Lock()
        self._store: dict[str, dict[str, dict]] = {kind: {} for kind in API_ROOTS}
        self._keys: dict[tuple[str, str], str] = {}
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle
    def start(self) -> TicketServer:
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.app = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = self._thread = None

    def __enter__(self) -> TicketServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("TicketServer is not running")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def endpoint(self, kind: str = "troubleTicket") -> str:
        """The TMF API root to pass to :func:`send_tickets` for ``kind``."""
        return self.url + API_ROOTS[kind]

    def resources(self, kind: str = "troubleTicket") -> list[dict]:
        with self._lock:
            return json.loads(json.dumps(list(self._store[kind].values())))

    def count(self, kind: str = "troubleTicket") -> int:
        with self._lock:
            return len(self._store[kind])

    # -- HTTP
    def _route(self, path: str) -> tuple[str | None, str | None]:
        path = urllib.parse.urlsplit(path).path.rstrip("/")
        for kind, root in API_ROOTS.items():
            collection = f"{root}/{kind}"
            if path == collection:
                return kind, None
            if path.startswith(collection + "/") and "/" not in path[len(collection) + 1:]:
                return kind, urllib.parse.unquote(path[len(collection) + 1:])
        return None, None

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: Any, headers: dict | None = None) -> None:
        data = json.dumps(body, sort_keys=True).encode("utf-8")
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _error(self, handler: BaseHTTPRequestHandler, status: int, message: str, headers: dict | None = None) -> None:
        reason = http.client.responses.get(status, "Error")
        self._send(handler, status, {"@type": "Error", "code": str(status), "reason": reason, "message": message, "status": str(status)}, headers)

    def _get(self, handler: BaseHTTPRequestHandler) -> None:
        kind, ident = self._route(handler.path)
        if kind is None:
            return self._error(handler, 404, f"no such resource path {handler.path}")
        with self._lock:
            items = list(self._store[kind].values())
            item = self._store[kind].get(ident) if ident is not None else None
        if ident is not None:
            return self._send(handler, 200, item) if item else self._error(handler, 404, f"{kind} {ident} not found")
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(handler.path).query)
        try:
            offset = int(query.get("offset", ["0"])[0])
            limit = int(query.get("limit", [str(len(items))])[0])
        except ValueError:
            return self._error(handler, 400, "offset and limit must be integers")
        page = items[max(0, offset):max(0, offset) + max(0, limit)]
        self._send(handler, 200, page, {"X-Total-Count": str(len(items)), "X-Result-Count": str(len(page))})

    def _post(self, handler: BaseHTTPRequestHandler) -> None:
        try:
            self._create(handler)
        finally:
            with self._lock:
                self.handled += 1

    def _create(self, handler: BaseHTTPRequestHandler) -> None:
        kind, ident = self._route(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        with self._lock:
            self.posts += 1
            fail = self.fail_next > 0
            self.fail_next -= int(fail)
            hold = not fail and self.delay_next > 0
            self.delay_next -= int(hold)
        if kind is None or ident is not None:
            return self._error(handler, 404 if kind is None else 405, f"cannot POST to {handler.path}")
        if fail:
            extra = {"Retry-After": self.retry_after} if self.retry_after is not None else None
            return self._error(handler, 503, "service temporarily unavailable (injected)", extra)
        if hold:
            time.sleep(self.delay)
        try:
            body = json.loads(raw)
        except ValueError:
            return self._error(handler, 400, "request body is not JSON")
        if not isinstance(body, dict):
            return self._error(handler, 400, "request body must be a JSON object")
        if body.get("@type") != _TYPES[kind]:
            return self._error(handler, 400, f"@type must be {_TYPES[kind]}, got {body.get('@type')!r}")
        missing = [name for name in _REQUIRED[kind] if body.get(name) in (None, "", [], {})]
        if missing:
            return self._error(handler, 400, f"missing mandatory attribute(s): {', '.join(missing)}")
        key = handler.headers.get("Idempotency-Key")
        with self._lock:
            existing = self._keys.get((kind, key)) if key else None
            if existing:
                resource, status, drop = self._store[kind][existing], 200, False
            else:
                ident = f"{_PREFIX[kind]}-{len(self._store[kind]) + 1:06d}"
                now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
                resource = {**body, "id": ident, "href": f"{self.endpoint(kind)}/{kind}/{ident}", "status": "acknowledged",
                            "creationDate": now, "lastUpdate": now}
                self._store[kind][ident] = resource
                if key:
                    self._keys[(kind, key)] = ident
                status = 201
                drop = self.drop_next > 0
                self.drop_next -= int(drop)
        if drop:  # the resource exists, but the client never hears about it
            handler.close_connection = True
            try:
                handler.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return None
        headers = {"Location": resource["href"]}
        if status == 200:
            headers["Idempotent-Replayed"] = "true"
        self._send(handler, status, resource, headers)
