"""Keyed pseudonymisation of subscriber identifiers (HMAC-SHA256), applied at ingest.

The key comes from the environment (OPENCEM_PSEUDONYM_KEY) or a key file; it is never written to the
lake. The same key maps the same identifier to the same pseudonym, so re-ingesting is idempotent. A
workspace whose runs used two keys (the variable set for one run and not the next) would hold two
pseudonyms per customer and join none of them, so the first run records a check value of the key beside
the key file, and every later run with another key stops.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError

KEY_ENV = "OPENCEM_PSEUDONYM_KEY"
CHECK_FILE = "pseudonym.check"  # beside the key file


def load_key(key_file: Path | None = None, create: bool = False) -> bytes:
    """The pseudonymisation key: environment first, then the key file (created if asked). With a key file,
    the key must match the check value recorded beside it; ``create`` records it on a first run."""
    env = os.environ.get(KEY_ENV)
    if key_file is None:
        if not env:
            raise InputError(f"no pseudonymisation key: set {KEY_ENV} or pass a key file")
        return env.encode()
    check_file = key_file.with_name(CHECK_FILE)
    if env:
        key, source = env.encode(), f"the environment's {KEY_ENV}"
    else:
        if not key_file.exists():
            if check_file.exists():
                raise InputError(f"no pseudonymisation key: set {KEY_ENV}; {key_file.parent.parent} was written with a key from it")
            if not create:
                raise InputError(f"no pseudonymisation key: set {KEY_ENV} or create {key_file}")
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_hex(32) + "\n")
            key_file.chmod(0o600)
        key, source = key_file.read_text().strip().encode(), str(key_file)
    if check_file.exists():
        if check_file.read_text().strip() != key_check(key):
            raise InputError(f"{key_file.parent.parent}: the pseudonymisation key from {source} is not the key this "
                             f"workspace was written with (check value in {check_file}); use that key, or a new workspace")
    elif create:
        check_file.parent.mkdir(parents=True, exist_ok=True)
        check_file.write_text(key_check(key) + "\n")
    return key


def key_check(key: bytes) -> str:
    """A check value of the key (the HMAC of a fixed text): it tells two keys apart and gives no pseudonym."""
    return hmac.new(key, b"opencem pseudonymisation key check", hashlib.sha256).hexdigest()[:16]


class Pseudonymiser:
    """HMAC-SHA256 of the identifier under the key, as 32 hex digits: in Python for a few identifiers, in
    SQL (:meth:`sql`) for a whole file, with the same result."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._cache: dict[str, str] = {}

    def one(self, raw: str) -> str:
        p = self._cache.get(raw)
        if p is None:
            p = hmac.new(self._key, raw.encode(), hashlib.sha256).hexdigest()[:32]
            self._cache[raw] = p
        return p

    def sql(self, column: str) -> tuple[str, dict[str, bytes]]:
        """The pseudonym of ``column`` (a SQL expression of text) in DuckDB SQL, and its parameters.
        HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m)) (RFC 2104); the padded keys are parameters, so the
        key appears in no SQL text or error message."""
        block = hashlib.sha256(self._key).digest() if len(self._key) > 64 else self._key
        block = block.ljust(64, b"\0")
        params = {"pseudonym_inner": bytes(b ^ 0x36 for b in block), "pseudonym_outer": bytes(b ^ 0x5C for b in block)}
        return (f"left(sha256($pseudonym_outer || unhex(sha256($pseudonym_inner || encode({column})))), 32)", params)

    def column(self, values: pa.ChunkedArray | pa.Array) -> pa.Array:
        """Replace every identifier; hashes each distinct value once (dictionary encoding)."""
        enc = pc.dictionary_encode(values).combine_chunks() if isinstance(values, pa.ChunkedArray) \
            else pc.dictionary_encode(values)
        mapped = pa.array([self.one(v) for v in enc.dictionary.to_pylist()], pa.string())
        return pc.take(mapped, enc.indices)
