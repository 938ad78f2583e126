"""OAuth2 client credentials: the client registry, secrets, scopes and signed access tokens.

* The registry is ``WS/api/clients.json``: per client its id, a salted scrypt hash of its secret (the secret
  itself is shown once, by ``opencem clients add``, and stored nowhere), its scopes, its declared purpose, its
  rate limit and whether it is revoked. It is re-read when the file changes (looked at every 0.25 s at most),
  so a revocation reaches a running server within a quarter of a second.
* Access tokens are JWTs signed with HMAC-SHA256 (PyJWT) under a key of the workspace
  (``WS/.secrets/api_signing.key``, made on first use, never served); they carry the client, its scopes and
  purpose, and expire (default one hour).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jwt

from ..errors import InputError

# one scope per API (CAMARA's names for the CAMARA APIs)
SCOPES = {
    "location-retrieval:read": "CAMARA Device Location Retrieval",
    "location-verification:verify": "CAMARA Device Location Verification",
    "population-density-data:read": "CAMARA Population Density Data",
    "nps:read": "NPS of the base, segments and grids (aggregates)",
    "experience:read": "one subscriber's experience and NPS class, by pseudonymous id (the operator's own tools)",
    "twin:read": "digital twin grid state (GeoJSON) and poor-experience episodes",
    "service-experience:read": "NWDAF-style observed service experience per grid and service",
    "insights:read": "aggregate tables of the loop, churn and segments stages",
    "user-preferences:read": "a consenting subscriber's preferences",
}
ALGORITHM = "HS256"
ISSUER = "opencem"
TOKEN_TTL_S = 3600
_CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    """``scrypt$<salt b64>$<hash b64>`` of a client secret."""
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, dklen=32, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def check_secret(secret: str, stored: str) -> bool:
    try:
        scheme, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(secret.encode(), salt=base64.b64decode(salt), dklen=32, **_SCRYPT)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(want, got)


@dataclass
class Client:
    client_id: str
    secret_hash: str
    scopes: list[str]
    purpose: str
    rate_per_s: float = 20.0
    burst: int = 40
    created: str = ""
    revoked: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked is None

    def public(self) -> dict:
        """What `clients list` shows: everything but the secret's hash."""
        d = asdict(self)
        d.pop("secret_hash")
        return d


@dataclass
class ClientRegistry:
    """The clients of a workspace (``WS/api/clients.json``)."""
    path: Path
    _clients: dict[str, Client] = field(default_factory=dict)
    _mtime: int = -1
    _checked: float = -1.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    recheck_s: float = 0.25  # the file's change time is looked at most this often (revocations: within it)

    @classmethod
    def of(cls, ws_root: Path) -> ClientRegistry:
        return cls(Path(ws_root) / "api" / "clients.json")

    def _load(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and self._checked >= 0 and now - self._checked < self.recheck_s:
            return
        self._checked = now
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self._clients, self._mtime = {}, -1
            return
        if mtime == self._mtime:
            return
        try:
            raw = json.loads(self.path.read_text())
            self._clients = {c["client_id"]: Client(**c) for c in raw.get("clients", [])}
        except (ValueError, TypeError, KeyError) as e:
            raise InputError(f"{self.path}: not a client registry OpenCEM can read ({e})") from e
        self._mtime = mtime

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"clients": [asdict(c) for c in self._clients.values()]}, indent=1) + "\n")
        tmp.chmod(0o600)
        tmp.replace(self.path)
        self._mtime, self._checked = -1, -1.0

    def get(self, client_id: str) -> Client | None:
        with self._lock:
            self._load()
            return self._clients.get(client_id)

    def all(self) -> list[Client]:
        with self._lock:
            self._load()
            return list(self._clients.values())

    def add(self, client_id: str, scopes: list[str], purpose: str, rate_per_s: float = 20.0, burst: int | None = None,
            secret: str | None = None) -> str:
        """Register a client; returns its secret (generated unless given), which is stored only as a hash."""
        if not _CLIENT_ID.match(client_id or ""):
            raise InputError(f"client id {client_id!r}: use 1-64 letters, digits, '.', '_' or '-'")
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            raise InputError(f"unknown scope(s) {', '.join(unknown) or '(none given)'}: use some of {', '.join(SCOPES)}")
        if not purpose.strip():
            raise InputError("a client needs a declared purpose (--purpose), written to the audit log with each call")
        if rate_per_s <= 0:
            raise InputError(f"--rate {rate_per_s}: requests per second must be above 0")
        with self._lock:
            self._load(force=True)
            if client_id in self._clients and self._clients[client_id].active:
                raise InputError(f"client {client_id!r} exists; revoke it first or choose another id")
            secret = secret or secrets.token_urlsafe(32)
            self._clients[client_id] = Client(
                client_id=client_id, secret_hash=hash_secret(secret), scopes=sorted(set(scopes)), purpose=purpose.strip(),
                rate_per_s=float(rate_per_s), burst=int(burst or max(1, round(2 * rate_per_s))),
                created=_now_iso())
            self._save()
        return secret

    def revoke(self, client_id: str) -> None:
        with self._lock:
            self._load(force=True)
            c = self._clients.get(client_id)
            if c is None:
                raise InputError(f"no client {client_id!r} in {self.path}")
            if not c.active:
                raise InputError(f"client {client_id!r} was revoked already ({c.revoked})")
            c.revoked = _now_iso()
            self._save()

    def authenticate(self, client_id: str, secret: str) -> Client | None:
        c = self.get(client_id)
        if c is None or not c.active or not check_secret(secret, c.secret_hash):
            return None
        return c


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def signing_key(ws_root: Path) -> bytes:
    """The workspace's token-signing key, created (mode 600) on first use."""
    path = Path(ws_root) / ".secrets" / "api_signing.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(secrets.token_hex(32) + "\n")
        tmp.chmod(0o600)
        tmp.replace(path)
    return path.read_text().strip().encode()


class TokenIssuer:
    """Issues and checks access tokens (JWT, HS256) for the clients of one registry."""

    CACHE_SIZE = 10_000

    def __init__(self, key: bytes, registry: ClientRegistry, ttl_s: int = TOKEN_TTL_S, audience: str = "opencem-api") -> None:
        self.key, self.registry, self.ttl_s, self.audience = key, registry, ttl_s, audience
        self._verified: dict[str, dict] = {}  # token -> its claims, once its signature and claims were checked

    def issue(self, client: Client, scopes: list[str]) -> tuple[str, int]:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": self.audience, "sub": client.client_id, "client_id": client.client_id,
                  "scope": " ".join(scopes), "purpose": client.purpose, "iat": now, "nbf": now,
                  "exp": now + self.ttl_s, "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self.key, algorithm=ALGORITHM), self.ttl_s

    def verify(self, token: str) -> tuple[dict, Client] | None:
        """The token's claims and client when it is valid, signed by us, unexpired and its client still active;
        else None."""
        claims = self._verified.get(token)
        if claims is None or claims["exp"] <= time.time():
            try:
                claims = jwt.decode(token, self.key, algorithms=[ALGORITHM], audience=self.audience, issuer=ISSUER,
                                    options={"require": ["exp", "iat", "sub", "scope"]})
            except jwt.PyJWTError:
                self._verified.pop(token, None)
                return None
            if len(self._verified) >= self.CACHE_SIZE:
                self._verified.clear()
            self._verified[token] = claims
        client = self.registry.get(claims["sub"])
        if client is None or not client.active:
            return None
        return claims, client
