"""Every error the API returns is a CAMARA ``ErrorInfo`` body: ``{"status", "code", "message"}``.

:class:`ApiError` is raised by the routers and dependencies; :func:`install` turns it, FastAPI's request
validation errors, Starlette's HTTP errors (404 of an unknown path, 405) and any unexpected exception into
that body, with the ``x-correlator`` header echoed (see ``app.py``).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("opencem.api")

# the generic code of each status (CAMARA_common.yaml), used when nothing more specific applies
GENERIC_CODES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 405: "METHOD_NOT_ALLOWED", 406: "NOT_ACCEPTABLE", 409: "CONFLICT", 415: "UNSUPPORTED_MEDIA_TYPE",
                 422: "UNPROCESSABLE_ENTITY", 429: "TOO_MANY_REQUESTS", 500: "INTERNAL", 501: "NOT_IMPLEMENTED",
                 503: "UNAVAILABLE"}


class ErrorInfo(BaseModel):
    """CAMARA's common error body."""
    status: int
    code: str
    message: str


class ApiError(Exception):
    """An error response: HTTP ``status``, CAMARA ``code``, a message for the developer, extra headers."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}

    def response(self) -> JSONResponse:
        return error_response(self.status, self.code, self.message, self.headers)


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"status": status, "code": code, "message": message}, status_code=status, headers=headers)


def unauthenticated(message: str = "Request not authenticated due to missing, invalid, or expired credentials.") -> ApiError:
    return ApiError(401, "UNAUTHENTICATED", message, {"WWW-Authenticate": "Bearer"})


def permission_denied(message: str = "Client does not have sufficient permissions to perform this action.") -> ApiError:
    return ApiError(403, "PERMISSION_DENIED", message)


def invalid_argument(message: str) -> ApiError:
    return ApiError(400, "INVALID_ARGUMENT", message)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    more = len(exc.errors()) - 3
    return "Client specified an invalid argument, request body or query param: " + "; ".join(parts) + \
        (f" (and {more} more)" if more > 0 else "")


def install(app: FastAPI) -> None:
    """Register the handlers that give every error an ErrorInfo body."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        request.state.error_code = exc.code
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        request.state.error_code = "INVALID_ARGUMENT"
        return error_response(400, "INVALID_ARGUMENT", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code = GENERIC_CODES.get(exc.status_code, "INVALID_ARGUMENT" if exc.status_code < 500 else "INTERNAL")
        request.state.error_code = code
        message = exc.detail if isinstance(exc.detail, str) else code
        if exc.status_code == 404 and message == "Not Found":
            message = f"No resource at {request.url.path}."
        return error_response(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        request.state.error_code = "INTERNAL"
        return error_response(500, "INTERNAL", "Unknown server error. Typically a server bug.")
