"""Query parameters a route does not take are refused (422), not ignored: a client paging ``/v1/runs``
with ``after`` (which only files, jobs and models took then) was answered the first page again and
again, and a misspelt ``limitt`` silently gave the default page. What each route takes is read from the
app's own OpenAPI schema, the parameters it documents."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute

from trainarena.api.errors import ApiError


def schema_operation(request: Request) -> dict[str, Any] | None:
    """The OpenAPI operation of the request's route (what it documents it takes), or None for a route
    the schema leaves out (it takes what it declares itself)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return None
    state = request.app.state
    if getattr(state, "schema_operations", None) is None:  # once per app
        state.schema_operations = {
            (method.upper(), path): operation
            for path, operations in request.app.openapi()["paths"].items() for method, operation in operations.items()
        }  # fmt: skip
    return state.schema_operations.get((request.method, route.path_format))


def refuse_unknown_query(request: Request) -> None:
    """A dependency of every API route: 422 naming the parameters the route does not take, and those it does."""
    operation = schema_operation(request) if request.query_params else None
    if operation is None:
        return
    known = {p["name"] for p in operation.get("parameters", ()) if p["in"] == "query"}
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = ", ".join(sorted(known)) or "none"
        raise ApiError(422, "invalid_request", f"unknown query parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                       f"{request.scope['route'].path_format} takes: {takes}", unknown=unknown)  # fmt: skip
