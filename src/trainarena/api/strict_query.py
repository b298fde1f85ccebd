"""Query parameters a route does not take are refused (422), not ignored: a client paging ``/v1/runs``
with ``after`` (which only files, jobs and models took then) was answered the first page again and
again, and a misspelt ``limitt`` silently gave the default page. What each route takes is read from the
app's own OpenAPI schema, the parameters it documents."""

from __future__ import annotations

from fastapi import Request
from fastapi.routing import APIRoute

from trainarena.api.errors import ApiError


def _query_parameters(request: Request) -> dict[tuple[str, str], frozenset[str]]:
    """(method, path template) -> the query parameters it takes, once per app."""
    state = request.app.state
    if getattr(state, "query_parameters", None) is None:
        state.query_parameters = {
            (method.upper(), path): frozenset(p["name"] for p in operation.get("parameters", ()) if p["in"] == "query")
            for path, operations in request.app.openapi()["paths"].items() for method, operation in operations.items()
        }  # fmt: skip
    return state.query_parameters


def refuse_unknown_query(request: Request) -> None:
    """A dependency of every API route: 422 naming the parameters the route does not take, and those it does."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    known = _query_parameters(request).get((request.method, route.path_format))
    if known is None:  # a route the schema leaves out takes what it declares itself
        return
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = ", ".join(sorted(known)) or "none"
        raise ApiError(422, "invalid_request", f"unknown query parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                       f"{route.path_format} takes: {takes}", unknown=unknown)  # fmt: skip
