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
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import http.client
import json
import logging
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.files import atomic_write_text
from ..errors import InputError
from .tmf import OWNER

log = logging.getLogger(__name__)

MAX_WAIT = 60.0  # seconds: cap for a backoff step or a server's Retry-After
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
        raise InputError(f"document {doc.get('name', '?')!r} has no externalIdentifier id to make it idempotent")
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
        raise InputError(f"ticket ledger {ledger} is unreadable ({exc}); fix or move it: sending without it could duplicate tickets") from None
    if not isinstance(data, dict):
        raise InputError(f"ticket ledger {ledger} is not a JSON object")
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
        raise InputError(f"kind must be a TMF resource name such as troubleTicket, got {kind!r}")
    parts = urllib.parse.urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"endpoint must be an http(s) URL of a TMF API root, got {endpoint!r}")
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
