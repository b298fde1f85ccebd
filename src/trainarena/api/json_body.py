"""JSON request bodies are checked as strictly as query parameters (strict_query): a key the route does
not take is refused (422 naming it and the keys the body takes; errors.py words it), not ignored: a
customer who sent ``budget_seconds`` to POST /v1/jobs got the default tier, and a misspelt
``validaton_share`` a job that was never scored. A body sent without ``Content-Type: application/json``
(``curl -d`` sends a form) is a 415 saying so, as POST /v1/files answers a body that is not multipart:
it was answered "Input should be a valid dictionary or object to extract fields from"."""

from __future__ import annotations

import email.message
import json

from fastapi import Request
from pydantic import BaseModel, ConfigDict

from trainarena.api.errors import ApiError, body_fields
from trainarena.api.strict_query import schema_operation


class RequestBody(BaseModel):
    """The base of every JSON body a route reads: unknown keys are errors, and values are of the type
    they name, as the task-file rules have them: ``true`` or ``"10"`` is not a number (pydantic's lax
    mode took them as 1 and 10). FastAPI checks the parsed JSON as Python objects, so a field JSON can
    only send as a string (an enum member, a time) is marked ``Field(strict=False)`` to be parsed from it."""

    model_config = ConfigDict(extra="forbid", strict=True)


# A body this short may be read to see whether it is an empty JSON object; a longer one is refused unread.
_EMPTY_OBJECT_MOST_BYTES = 64


async def check_request_body(request: Request) -> None:
    """A dependency of every API route. A body sent to a route that takes none (its OpenAPI operation has
    no requestBody: cancel, start, publish, delete...) is a 422 saying so, as an unknown query parameter
    is, rather than ignored; ``{}``, which many clients send with every POST, says nothing and is let
    through. A body sent to a route that reads JSON, of another content type (or none), is a 415 saying
    how to send it."""
    operation = schema_operation(request)
    if operation is not None and "requestBody" not in operation:
        await _refuse_any_body(request)
        return
    if not body_fields(request.scope.get("route")) or not await request.body():
        return
    content_type = request.headers.get("content-type")
    header = email.message.Message()
    header["content-type"] = content_type or "text/plain"
    subtype = header.get_content_subtype()
    if content_type and header.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json")):
        return
    raise ApiError(415, "unsupported_media_type", "send the body as JSON with `Content-Type: application/json` (it was "
                   f"{'sent as ' + content_type if content_type else 'sent without a Content-Type'}; `curl -d` sends a form "
                   "unless given -H 'Content-Type: application/json')", content_type=content_type)  # fmt: skip


async def _refuse_any_body(request: Request) -> None:
    """422 where the request carries a body other than ``{}``; judged from its headers where they say
    there is none or it is long, so a large body is never read into memory."""
    length = request.headers.get("content-length")
    if length is None and "transfer-encoding" not in request.headers:
        return
    sent = f"{length} bytes" if length is not None else "a chunked body"
    if length is not None and length.isdigit() and int(length) <= _EMPTY_OBJECT_MOST_BYTES:
        body = await request.body()
        if not body.strip() or _is_empty_object(body):
            return
    route = request.scope["route"].path_format
    raise ApiError(422, "invalid_request", f"{request.method} {route} takes no body; send none (it was sent {sent})",
                   body_bytes=int(length) if length is not None and length.isdigit() else None)


def _is_empty_object(body: bytes) -> bool:
    try:
        return json.loads(body) == {}
    except ValueError:
        return False
