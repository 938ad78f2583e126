"""A small real TMF621/TMF656-style ticketing server on the loopback interface, for the tests of
:mod:`opencem.loop.ticketing` (exactly-once sending under injected faults)."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_ROOTS = {"troubleTicket": "/tmf-api/troubleTicket/v5", "serviceProblem": "/tmf-api/serviceProblemManagement/v5"}
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
    """A TMF621/TMF656-style ticketing server on 127.0.0.1 (ephemeral port), for tests.

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
