"""The append-only audit log of API calls: ``WS/api/audit/YYYY-MM-DD.jsonl``, one JSON line per call.

Each line: ``time`` (UTC), ``client``, ``api``, ``operation`` (method and route), ``subject`` (the
pseudonymous subscriber id the call was about, or null), ``purpose`` (the client's declared purpose),
``status``, ``result`` (``ok`` or the error code) and ``correlator``. No raw identifier (phone number, IP
address) is ever written. Lines are appended with O_APPEND, one ``write`` per line, so concurrent writers
never interleave within a line and nothing is rewritten.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from pathlib import Path


class AuditLog:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._day: str | None = None
        self._fd: int | None = None

    def _file(self, day: str) -> int:
        if day != self._day or self._fd is None:
            if self._fd is not None:
                os.close(self._fd)
            self._fd = os.open(self.folder / f"{day}.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._day = day
        return self._fd

    def write(self, *, client: str | None, api: str, operation: str, subject: str | None, purpose: str | None,
              status: int, result: str, correlator: str | None) -> None:
        now = dt.datetime.now(dt.UTC)
        line = json.dumps({"time": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"), "client": client,
                           "api": api, "operation": operation, "subject": subject, "purpose": purpose,
                           "status": status, "result": result, "correlator": correlator},
                          separators=(",", ":")) + "\n"
        data = line.encode()
        with self._lock:
            os.write(self._file(now.date().isoformat()), data)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def read_audit(folder: Path) -> list[dict]:
    """Every line of the audit log, oldest file first."""
    out = []
    for path in sorted(Path(folder).glob("*.jsonl")):
        out.extend(json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return out
