"""One error shape for every failure the API answers: ``{"error": {"code", "message", "details"}}``.

``code`` is a stable, machine-readable word (``not_found``, ``invalid_request``, ``rate_limited``...),
``message`` a sentence for people that names what is wrong and the fix, ``details`` whatever helps a
program (the field, the row, the limit). FastAPI's own errors (a bad body, an unknown path) are turned
into the same shape.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from trainarena.contract import STORE_INT_MAX
from trainarena.store import StoreFileLost, StoreUnavailable

logger = logging.getLogger(__name__)

# The code of each HTTP status FastAPI or Starlette may answer on their own.
STATUS_CODES = {
    400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "too_large", 415: "unsupported_media_type", 422: "invalid_request", 429: "rate_limited",
    500: "internal_error", 503: "unavailable",
}  # fmt: skip


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. not_found, invalid_request, rate_limited.")
    message: str = Field(description="What is wrong and how to fix it, for people.")
    details: dict[str, Any] = Field(default_factory=dict, description="Structured context: the field, row, limit...")


class ErrorResponse(BaseModel):
    error: ErrorBody


class ApiError(Exception):
    """Raised by a route to answer ``status`` with the error shape."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


def not_found(what: str, identifier: object) -> ApiError:
    """The 404 of a missing resource, and of one the caller may not see (never a 403: a customer must not
    learn that another customer's job exists)."""
    return ApiError(404, "not_found", f"no {what} {identifier!s}", **{what.replace(" ", "_"): str(identifier)})


def error_response(status: int, code: str, message: str, details: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:  # fmt: skip
    body = ErrorResponse(error=ErrorBody(code=code, message=message, details=details or {}))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


# Responses every authenticated route may give, for the OpenAPI schema.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in ((401, "No valid API key"), (404, "Not found, or not yours"), (422, "Invalid request"),
                                (429, "Rate limit reached"))
}  # fmt: skip


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.code, error.message, error.details, error.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        unreadable = unreadable_body(error)
        if unreadable is not None:
            return error_response(422, "invalid_request", unreadable, {"problems": [{"where": "body", "problem": unreadable}]})
        code = STATUS_CODES.get(error.status_code, "error")
        return error_response(error.status_code, code, str(error.detail), getattr(error, "details", None),
                              headers=getattr(error, "headers", None))  # fmt: skip

    # A fault of the server (a bug) answers in the one shape too, not Starlette's text/plain: Starlette raises
    # it again once this is sent, so the server's log keeps its traceback.
    @app.exception_handler(Exception)
    async def _internal(_request: Request, _error: Exception) -> JSONResponse:
        return error_response(500, STATUS_CODES[500], "the server failed on this request; the cause is in its log: "
                              "try again, or tell the operator if it keeps failing")

    @app.exception_handler(StoreUnavailable)
    async def _store_unavailable(_request: Request, error: StoreUnavailable) -> JSONResponse:
        return store_unavailable_response(error)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [{"where": _where(problem), "problem": _problem_text(problem, error.body)} for problem in error.errors()]
        message = "; ".join(_said(p) for p in problems) or "the request is not valid"
        details: dict[str, Any] = {"problems": problems}
        unknown = [str(problem["loc"][1]) for problem in error.errors()
                   if problem.get("type") == "extra_forbidden" and len(problem.get("loc", ())) == 2]  # fmt: skip
        if unknown:  # one sentence for them all, with what the route takes (as strict_query words query parameters)
            route = request.scope.get("route")
            takes = ", ".join(body_fields(route)) or "none"
            path = getattr(route, "path_format", request.url.path)
            others = [_said(p) for p in problems if p["problem"] != EXTRA_FIELD]
            message = "; ".join([f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                                 f"the body of {request.method} {path} takes: {takes}", *others])  # fmt: skip
            details["unknown"] = unknown
        return error_response(422, "invalid_request", message, details)


def unreadable_body(error: StarletteHTTPException) -> str | None:
    """What is wrong with a JSON body FastAPI could not decode, or None for another error. FastAPI answers
    any decoding error but a JSONDecodeError with 400 "There was an error parsing the body"; the API
    answers those 422 saying what it is, as it does a body that does not parse."""
    cause = error.__cause__
    if error.status_code != 400 or cause is None:
        return None
    if isinstance(cause, UnicodeDecodeError):
        return (f"the body is not valid JSON: it is not UTF-8 at byte {cause.start} ({cause.object[cause.start:cause.start + 1]!r}); "
                "send JSON encoded as UTF-8")  # fmt: skip
    if isinstance(cause, RecursionError):
        return "the body is not valid JSON that can be read: it is nested too deeply (arrays or objects inside one another)"
    return f"the body is not valid JSON: it could not be decoded ({type(cause).__name__})"


def store_unavailable_response(error: StoreUnavailable) -> JSONResponse:
    # The database's URL is the operator's to see, not every caller's: it goes to the log.
    logger.warning("answered 503: %s", error)
    if isinstance(error, StoreFileLost):  # no later request succeeds: the operator must restart the server
        return error_response(503, "unavailable", error.restart_needed("the server", show_path=False))
    return error_response(503, "unavailable", "the database is unavailable now; try again later")




EXTRA_FIELD = "unknown field"


def body_fields(route: object) -> list[str]:
    """The keys of the route's JSON body (its pydantic model's fields)."""
    model = getattr(getattr(getattr(route, "body_field", None), "field_info", None), "annotation", None)
    return sorted(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


def _said(problem: dict[str, str]) -> str:
    """A problem in the message: where, then what ("the body ..." names its place itself)."""
    return problem["problem"] if problem["problem"].startswith("the body") else f"{problem['where']}: {problem['problem']}"


def _where(problem: dict[str, Any]) -> str:
    location = problem.get("loc", ())
    if problem.get("type") == "json_invalid":  # pydantic's location is the character the parser stopped at
        location = location[:1]
    return ".".join(str(part) for part in location)


def _problem_text(problem: dict[str, Any], body: Any) -> str:
    """pydantic's message, or a plainer one where it names the parser rather than the fix."""
    kind = problem.get("type")
    if kind == "json_invalid":
        return f"the body is not valid JSON: {problem.get('ctx', {}).get('error', 'it does not parse')}{_at(problem, body)}"
    if kind == "extra_forbidden":
        return EXTRA_FIELD
    if kind in ("model_attributes_type", "dict_type") and tuple(problem.get("loc", ())) == ("body",):
        return "the body must be a JSON object"
    if kind == "int_parsing_size":
        return f"the number is too large: give a whole number from 0 to {STORE_INT_MAX}"
    return str(problem.get("msg", ""))


def _at(problem: dict[str, Any], body: Any) -> str:
    """Where in the body the JSON parser stopped: " at line L, column C"."""
    location = problem.get("loc", ())
    position = location[1] if len(location) > 1 and isinstance(location[1], int) else None
    if position is None or not isinstance(body, str):
        return ""
    line_start = body.rfind("\n", 0, position) + 1
    line = body.count("\n", 0, position) + 1
    return f" at line {line}, column {position - line_start + 1}"


# Responses of routes that only some roles may call: those above, and 403 for the others.
ROLE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES, 403: {"model": ErrorResponse, "description": "This key's role may not do this"},
}

# And for routes that read a JSON body: one over api.json_body_max_bytes is a 413, one sent as another
# content type (a form) a 415.
BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorResponse, "description": "The body is larger than settings api.json_body_max_bytes"},
    415: {"model": ErrorResponse, "description": "The body was not sent as Content-Type: application/json"},
}


def quota_response(*settings: str) -> dict[str, Any]:
    """The schema's entry for a route's 409 ``quota_exceeded``: a key at one of its quotas ``settings``."""
    return {"model": ErrorResponse, "description": f"quota_exceeded: this key is at its quota (settings {' or '.join(settings)})"}
