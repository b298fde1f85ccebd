"""Mounting the dashboard into an app: its routers (pages left out of the OpenAPI schema, which
documents the versioned API only), its static assets, and its not-found page where a browser asked
for a page (the API's errors stay JSON)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.responses import Response

from trainarena.reporting.run_files import ArtifactListings
from trainarena.web import account, detail_pages, pages
from trainarena.web.templating import not_found_page

STATIC_DIR = Path(__file__).parent / "static"
# Run pages' artifact listings kept by digest (reporting.run_files.ArtifactListings): up to 100 lines each.
ARTIFACT_LISTINGS_KEPT = 256


def install_dashboard(app: FastAPI) -> None:
    """The pages and assets; after the API's error handlers (api.errors), whose JSON answers stay the
    API's and any request's but a page's."""
    routers = (pages.router, detail_pages.router, account.router)
    for router in routers:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.state.artifact_listings = ArtifactListings(ARTIFACT_LISTINGS_KEPT)
    page_routes = {id(route) for router in routers for route in router.routes}
    api_http_error, api_invalid = app.exception_handlers[HTTPException], app.exception_handlers[RequestValidationError]

    def asks_for_a_page(request: Request) -> bool:
        """A page's route (``/tournaments/abc``: its id is no number), or no route at all for a browser."""
        route = request.scope.get("route")
        if route is not None:
            return id(route) in page_routes
        return "text/html" in request.headers.get("accept", "") and not request.url.path.startswith("/v1/")

    async def http_error(request: Request, error: Exception) -> Response:
        if isinstance(error, HTTPException) and error.status_code == 404 and asks_for_a_page(request):
            return not_found_page(request, f"There is no page at {request.url.path}.")
        return await api_http_error(request, error)

    async def invalid(request: Request, error: Exception) -> Response:
        if asks_for_a_page(request):
            return not_found_page(request, f"There is no page at {request.url.path}.")
        return await api_invalid(request, error)

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
