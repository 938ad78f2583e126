"""``POST /oauth2/token``: OAuth2 client credentials grant (RFC 6749 4.4), form-encoded; the client
authenticates with HTTP Basic or with ``client_id`` / ``client_secret`` in the form."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from ..app import error_responses
from ..errors import ApiError, invalid_argument, permission_denied, unauthenticated
from ..models import Token

router = APIRouter(tags=["OAuth2"])
TOKEN_ATTEMPTS_PER_S, TOKEN_ATTEMPTS_BURST = 1.0, 10  # token requests per client id, whatever their outcome

_FORM = {"application/x-www-form-urlencoded": {"schema": {
    "type": "object", "required": ["grant_type"],
    "properties": {"grant_type": {"type": "string", "enum": ["client_credentials"]},
                   "client_id": {"type": "string"}, "client_secret": {"type": "string"},
                   "scope": {"type": "string", "description": "space-separated scopes; all the client's when absent"}}}}}


@router.post("/oauth2/token", response_model=Token, summary="Access token (client credentials)",
             openapi_extra={"requestBody": {"required": True, "content": _FORM}},
             responses=error_responses(400, 401, 403, 429))
async def token(request: Request) -> Token:
    ctx = request.app.state.ctx
    request.state.api = "oauth2"
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise invalid_argument("send the token request as application/x-www-form-urlencoded")
    try:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8"), strict_parsing=False).items()}
    except UnicodeDecodeError:
        raise invalid_argument("the token request is not UTF-8") from None
    if form.get("grant_type") != "client_credentials":
        raise invalid_argument("grant_type must be client_credentials")
    client_id, secret = form.get("client_id"), form.get("client_secret")
    auth = request.headers.get("authorization", "")
    if auth[:6].lower() == "basic ":
        try:
            client_id, _, secret = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise unauthenticated("HTTP Basic credentials cannot be read") from None
    if not client_id or not secret:
        raise unauthenticated("client credentials missing: HTTP Basic or client_id and client_secret")
    # attempts per client id are limited before the (deliberately slow) secret check, which runs off the event loop
    wait = ctx.limiter.check("token-attempts:" + client_id, TOKEN_ATTEMPTS_PER_S, TOKEN_ATTEMPTS_BURST)
    if wait is not None:
        raise ApiError(429, "TOO_MANY_REQUESTS", "Too many token requests for this client.", {"Retry-After": str(wait)})
    client = await run_in_threadpool(ctx.registry.authenticate, client_id, secret)
    if client is None:
        raise unauthenticated("unknown client, wrong secret or revoked client")
    request.state.client, request.state.purpose = client.client_id, client.purpose
    wait = ctx.limiter.check(client.client_id, client.rate_per_s, client.burst)
    if wait is not None:
        raise ApiError(429, "TOO_MANY_REQUESTS", "Rate limit reached.", {"Retry-After": str(wait)})
    asked = form.get("scope", "").split() or client.scopes
    refused = sorted(set(asked) - set(client.scopes))
    if refused:
        raise permission_denied(f"scope(s) not granted to this client: {' '.join(refused)}")
    jwt_, ttl = ctx.issuer.issue(client, sorted(set(asked)))
    return Token(access_token=jwt_, expires_in=ttl, scope=" ".join(sorted(set(asked))))
