"""JSON request bodies are checked as strictly as query parameters (strict_query): a key the route does
not take is refused (422 naming it and the keys the body takes; errors.py words it), not ignored: a
customer who sent ``budget_seconds`` to POST /v1/jobs got the default tier, and a misspelt
``validaton_share`` a job that was never scored. A body sent without ``Content-Type: application/json``
(``curl -d`` sends a form) is a 415 saying so, as POST /v1/files answers a body that is not multipart:
it was answered "Input should be a valid dictionary or object to extract fields from"."""

from __future__ import annotations

import email.message

from fastapi import Request
from pydantic import BaseModel, ConfigDict

from trainarena.api.errors import ApiError, body_fields


class RequestBody(BaseModel):
    """The base of every JSON body a route reads: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


async def refuse_non_json_body(request: Request) -> None:
    """A dependency of every API route: a body sent to a route that reads JSON, of another content type
    (or none), is a 415 saying how to send it."""
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
