"""The key is checked, and a request body bounded, before anything reads the body.

FastAPI reads and parses a route's JSON body before it solves the route's dependencies, the key among
them, so any client without a key could make the API read and parse a body of any size into memory
(a 400 MB body grew the server by 800 MB). This middleware sits in front of every ``/v1/`` request
that carries a body: it authenticates the key first (401 or 429 without reading a byte; the
dependency then takes the principal found here, so the request is counted once), refuses a body whose
``Content-Length`` is over ``api.json_body_max_bytes`` with 413 at once, and refuses a streamed
(chunked) one with 413 as soon as it passes the bound. Uploads (``POST /v1/files``) check the key
first themselves and have their own bound (``api.upload_max_bytes``): they pass through untouched."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trainarena.api.auth import PRINCIPAL_SCOPE_KEY, authenticated, bearer
from trainarena.api.errors import ApiError, error_response, store_unavailable_response
from trainarena.store import StoreUnavailable

API_PREFIX = "/v1/"
# Requests that check their key and bound their body themselves, or take no key.
UNGUARDED = frozenset({("POST", "/v1/files")})
UNGUARDED_PATHS = frozenset({"/v1/health"})


class BodyTooLarge(StarletteHTTPException):
    """A streamed body passed the bound while it was read. An HTTPException, so FastAPI's body reading
    lets it through (it answers any other error while reading as "There was an error parsing the body")."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large_message(limit))
        self.details = {"limit_bytes": limit}  # errors.py's handler puts them in the error shape


def too_large_message(limit: int) -> str:
    return (f"the body is larger than {limit:,} bytes (settings api.json_body_max_bytes); JSON bodies are small: "
            "send data as a file (POST /v1/files)")  # fmt: skip


class BodyGuard:
    """ASGI middleware: authenticate, then bound the body, of ``/v1/`` requests that carry one."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _guarded(scope):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if (length is None or length.strip() == "0") and "transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body: the route's dependencies check the key as ever
            return
        refusal = await _authenticate(Request(scope))
        if refusal is None and length is not None and length.strip().isdigit() and int(length) > self.limit:
            refusal = error_response(413, "too_large", too_large_message(self.limit), {"limit_bytes": self.limit})
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, _bounded(receive, self.limit), send)


def _guarded(scope: Scope) -> bool:
    if scope["type"] != "http":
        return False
    path = scope["path"]
    return path.startswith(API_PREFIX) and path not in UNGUARDED_PATHS and (scope["method"], path) not in UNGUARDED


async def _authenticate(request: Request) -> Any:
    """None when the key is good (the principal is left in the scope for the route's dependency), else
    the error response."""
    credentials = await bearer(request)
    try:
        request.scope[PRINCIPAL_SCOPE_KEY] = await run_in_threadpool(authenticated, request, credentials)
    except ApiError as error:
        return error_response(error.status, error.code, error.message, error.details, error.headers)
    except StoreUnavailable as error:
        return store_unavailable_response(error)
    return None


def _bounded(receive: Receive, limit: int) -> Receive:
    received = 0

    async def bounded() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
        return message

    return bounded
