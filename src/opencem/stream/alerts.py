"""Alerts of the stream's outbox POSTed to webhooks: at least once, each with an idempotency key.

The outbox (``WS/stream/outbox/batch-<id>.parquet``) is written in the same commit as the state, so an alert
exists exactly once. Delivery is after the commit: each alert is POSTed as JSON to every webhook with the
header ``Idempotency-Key: <alert_id>`` (the receiver drops a key it has seen: a POST retried after a lost
answer, or sent again after a restart, counts once). A 2xx answer marks the alert delivered to that webhook
in ``WS/stream/delivered/<webhook hash>.txt``; anything else is retried with a growing pause, and what still
fails waits for the next batch.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from .run import StreamState


def _jsonable(v):
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    return v


def alert_body(row: dict) -> bytes:
    row = {k: _jsonable(v) for k, v in row.items()}
    if row.get("detail"):
        row["detail"] = json.loads(row["detail"])
    return json.dumps(row, sort_keys=True).encode()


def post(url: str, body: bytes, key: str, timeout: float = 5.0) -> int:
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Idempotency-Key": key})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0  # no answer: connection refused, timed out


def deliver(state: StreamState, webhooks: list[str], retries: int = 5, backoff: float = 0.2,
            say: Callable[[str], None] | None = None) -> dict[str, int]:
    """POST every alert of the outbox not yet delivered to each webhook; returns webhook -> alerts delivered now."""
    say = say or (lambda _m: None)
    outbox: pa.Table = state.outbox_table()
    done: dict[str, int] = {}
    if not outbox.num_rows:
        return {w: 0 for w in webhooks}
    rows = outbox.to_pylist()
    for url in webhooks:
        log = state.root / "delivered" / f"{hashlib.sha256(url.encode()).hexdigest()[:16]}.txt"
        log.parent.mkdir(parents=True, exist_ok=True)
        seen = set(log.read_text().split()) if log.exists() else set()
        done[url] = 0
        with open(log, "a", encoding="utf-8") as fh:
            for row in rows:
                key = row["alert_id"]
                if key in seen:
                    continue
                body = alert_body(row)
                for attempt in range(retries):
                    status = post(url, body, key)
                    if 200 <= status < 300:
                        fh.write(key + "\n")
                        fh.flush()
                        seen.add(key)
                        done[url] += 1
                        break
                    time.sleep(backoff * 2 ** attempt)
                else:
                    say(f"webhook {url}: alert {key} not delivered after {retries} tries (answer {status}); retried after the next batch")
                    break  # keep the order: the rest waits too
    return done
