"""The FastAPI application over one workspace: :func:`create_app`.

Cross-cutting pieces, applied to every route:

* ``x-correlator``: checked against CAMARA's pattern (400 otherwise) and echoed on every response;
* OAuth2 client credentials: ``POST /oauth2/token`` gives a JWT; each route needs one scope (``require``);
* a per-client rate limit (429 ``TOO_MANY_REQUESTS`` with ``Retry-After``);
* the audit log: one line per call (client, API, pseudonymous subject, purpose, result, time);
* every error an ErrorInfo body (``errors.py``); every aggregate obeys the minimum group size.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Depends, FastAPI, Request, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import OAuth2

from . import errors
from .audit import AuditLog
from .errors import ApiError, ErrorInfo, error_response, permission_denied, unauthenticated
from .models import XCORRELATOR
from .ratelimit import RateLimiter
from .security import SCOPES, ClientRegistry, TokenIssuer, signing_key
from .store import Store

log = logging.getLogger("opencem.api")
_CORRELATOR = re.compile(XCORRELATOR)
UNAUDITED = ("/docs", "/redoc", "/openapi.json", "/health", "/docs/oauth2-redirect")


@dataclass
class Settings:
    """``min_group``: smallest group any aggregate may describe. ``now``: the clock maxAge and time windows are
    judged against (None: the wall clock; a batch workspace's data ends before today, so a demo may set it to
    the end of the data). ``recent_days``: days of MR / xDR read for last positions."""
    min_group: int = 10
    now: dt.datetime | None = None
    token_ttl_s: int = 3600
    recent_days: int = 2
    max_density_cells: int = 5000
    max_density_values: int = 200_000


@dataclass
class Context:
    store: Store
    registry: ClientRegistry
    issuer: TokenIssuer
    limiter: RateLimiter
    audit: AuditLog
    settings: Settings = field(default_factory=Settings)

    def now(self) -> dt.datetime:
        return self.settings.now or dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Caller:
    client_id: str
    purpose: str
    scopes: frozenset[str]


_oauth2 = OAuth2(flows=OAuthFlows(clientCredentials=OAuthFlowClientCredentials(tokenUrl="/oauth2/token", scopes=SCOPES)),
                 auto_error=False, scheme_name="oauth2")


def require(scope: str, api: str):
    """A dependency: the caller's valid token with ``scope``, within its rate limit; names the API for the audit."""

    async def dependency(request: Request, authorization: str | None = Security(_oauth2, scopes=[scope])) -> Caller:
        ctx: Context = request.app.state.ctx
        request.state.api = api
        if not authorization or authorization[:7].lower() != "bearer ":
            raise unauthenticated("Request not authenticated: send an access token (Authorization: Bearer ...).")
        verified = ctx.issuer.verify(authorization[7:].strip())
        if verified is None:
            raise unauthenticated()
        claims, client = verified
        request.state.client, request.state.purpose = client.client_id, client.purpose
        wait = ctx.limiter.check(client.client_id, client.rate_per_s, client.burst)
        if wait is not None:
            raise ApiError(429, "TOO_MANY_REQUESTS", "Rate limit reached.", {"Retry-After": str(wait)})
        scopes = frozenset(claims["scope"].split())
        if scope not in scopes:
            raise permission_denied(f"Client does not have sufficient permissions to perform this action: the token lacks scope {scope}.")
        return Caller(client.client_id, client.purpose, scopes)

    return Depends(dependency)


def with_correlator_header(schema: dict) -> dict:
    """CAMARA's optional ``x-correlator`` header on every operation of the OpenAPI document. The middleware
    checks and echoes it; a dependency doing the same would cost each request about 15 % of its time."""
    param = {"name": "x-correlator", "in": "header", "required": False,
             "description": "Correlation id, echoed on the response (CAMARA)",
             "schema": {"type": "string", "pattern": XCORRELATOR, "maxLength": 256}}
    for item in schema.get("paths", {}).values():
        for op in item.values():
            params = op.setdefault("parameters", [])
            if not any(p.get("name") == "x-correlator" for p in params):
                params.append(param)
    return schema


def error_responses(*statuses: int) -> dict:
    """OpenAPI entries for the error statuses of a route (all ErrorInfo)."""
    text = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 422: "Unprocessable Content",
            429: "Too Many Requests"}
    return {s: {"model": ErrorInfo, "description": text.get(s, "Error")} for s in statuses}


class CorrelatorAndAudit:
    """ASGI middleware: x-correlator check and echo, ErrorInfo for unexpected errors, the audit line."""

    def __init__(self, app, get_ctx) -> None:
        self.app, self.get_ctx = app, get_ctx

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        correlator = None
        for k, v in scope.get("headers", ()):
            if k == b"x-correlator":
                correlator = v.decode("latin-1")
                break
        state = scope.setdefault("state", {})
        sent = {"status": 0}
        echo = correlator if correlator is not None and _CORRELATOR.fullmatch(correlator) else None
        path = scope.get("path", "")
        audited = not path.startswith(UNAUDITED)

        def record(status: int) -> None:
            # written before the response leaves: a client never sees an answer whose call is not in the log
            self.get_ctx().audit.write(
                client=state.get("client"), api=state.get("api", "-"), operation=f"{scope.get('method')} {path}",
                subject=state.get("subject"), purpose=state.get("purpose"), status=status,
                result="ok" if status < 400 else state.get("error_code") or errors.GENERIC_CODES.get(status, str(status)),
                correlator=echo)

        async def send_echo(message):
            if message["type"] == "http.response.start":
                sent["status"] = message["status"]
                if audited:
                    record(message["status"])
                if echo is not None:
                    message["headers"] = list(message.get("headers", ())) + [(b"x-correlator", echo.encode())]
            await send(message)

        try:
            if correlator is not None and echo is None:
                state["error_code"] = "INVALID_ARGUMENT"
                await error_response(400, "INVALID_ARGUMENT", "x-correlator header does not match "
                                     "^[a-zA-Z0-9-_:;.\\/<>{}]{0,256}$")(scope, receive, send_echo)
            else:
                await self.app(scope, receive, send_echo)
        except Exception:
            log.exception("unexpected error on %s %s", scope.get("method"), path)
            state["error_code"] = "INTERNAL"
            if not sent["status"]:
                await error_response(500, "INTERNAL", "Unknown server error. Typically a server bug.")(scope, receive, send_echo)


def create_app(workspace: str | Path, settings: Settings | None = None) -> FastAPI:
    """The API of ``workspace``: loads its data now; the client registry, signing key and audit log live in it."""
    from .routers import camara, insights, nps, oauth, preferences, twin

    settings = settings or Settings()
    root = Path(workspace)
    store = Store(root, recent_days=settings.recent_days)
    registry = ClientRegistry.of(root)
    ctx = Context(store=store, registry=registry,
                  issuer=TokenIssuer(signing_key(root), registry, ttl_s=settings.token_ttl_s),
                  limiter=RateLimiter(), audit=AuditLog(root / "api" / "audit"), settings=settings)
    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        ctx.audit.close()
        ctx.store.close()

    app = FastAPI(lifespan=lifespan, title="OpenCEM open APIs", version="0.1.0",
                  description="CAMARA Device Location (retrieval, verification), Population Density Data, and "
                              "OpenCEM's experience, NPS, twin, service-experience, insight and user-preference "
                              "resources over one workspace. OAuth2 client credentials; every error a CAMARA ErrorInfo.")
    app.state.ctx = ctx
    errors.install(app)
    app.add_middleware(CorrelatorAndAudit, get_ctx=lambda: app.state.ctx)
    for module in (oauth, camara, nps, twin, insights, preferences):
        app.include_router(module.router)
    plain_openapi = app.openapi
    app.openapi = lambda: with_correlator_header(plain_openapi())

    @app.get("/health", include_in_schema=False)
    async def health() -> dict:
        return {"status": "ok"}

    return app
