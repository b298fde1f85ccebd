"""The FastAPI application: settings and store on ``app.state``, the routers, the error shape, the
offline interactive docs (``/docs``, ``/redoc``), and the background services the process runs beside
the API (the job worker, the tournament schedule), started and stopped with it. At start, model
folders that registrations killed midway left without a row are swept (``registry.sweep_registry``)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Protocol

from fastapi import Depends, FastAPI
from fastapi_offline import FastAPIOffline

from trainarena import __version__
from trainarena.api.auth import RateLimiter
from trainarena.api.body_guard import BodyGuard
from trainarena.api.cache import VersionedCache
from trainarena.api.errors import install_error_handlers
from trainarena.api.head_requests import HeadAsGet
from trainarena.api.json_body import check_request_body
from trainarena.api.routes import ROUTERS
from trainarena.api.security_headers import SecurityHeaders
from trainarena.api.strict_query import refuse_unknown_query
from trainarena.jobs.quotas import UploadsUnderWay
from trainarena.registry import sweep_registry
from trainarena.settings import Settings
from trainarena.store import Store, open_store
from trainarena.web import install_dashboard

API_DESCRIPTION = """\
Training scripts compete in tournaments; the champion's method trains customers' models.

Authenticate with an API key (`trainarena keys create --role operator|competitor|customer NAME`) sent as
`Authorization: Bearer ta_...`. Errors are `{"error": {"code", "message", "details"}}`. See docs/api.md.
"""

logger = logging.getLogger(__name__)


class Service(Protocol):
    """Work a serving process does beside the API (a job worker, the schedule): started once the store
    is open, stopped (and waited for) before it closes."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


def create_app(settings: Settings, *, store: Store | None = None, services: Sequence[Service] = ()) -> FastAPI:
    """The API over ``store`` (opened from ``settings`` at start-up and closed at shut-down when None)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if store is None:
                app.state.store = stack.enter_context(open_store(settings))
            _sweep_registry(app.state.store, settings)
            for service in services:
                service.start()
                stack.callback(service.stop)
            yield

    app = FastAPIOffline(
        title="trainarena",
        version=__version__,
        description=API_DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.rate_limiter = RateLimiter(settings.api)
    app.state.cache = VersionedCache()
    app.state.uploads_under_way = UploadsUnderWay(settings)  # each process counts its own, as for rate limits
    app.state.services = tuple(services)  # routes find theirs by type (e.g. the tournament drivers)
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router, dependencies=[Depends(refuse_unknown_query), Depends(check_request_body)])
    install_dashboard(app)  # the web pages at / and their assets at /static (not in the OpenAPI schema)
    app.add_middleware(BodyGuard, limit=settings.api.json_body_max_bytes)  # the key, then a bounded body, before it is read
    app.add_middleware(HeadAsGet)  # HEAD wherever GET is (monitors and link checkers ask with HEAD)
    app.add_middleware(SecurityHeaders)  # outermost: on the API's, the pages' and the middlewares' answers alike
    return app


def _sweep_registry(store: Store, settings: Settings) -> None:
    try:
        with store.session() as session:
            removed = sweep_registry(session, settings)
    except Exception:  # noqa: BLE001 - only tidying: the API starts anyway
        logger.exception("the model registry was not swept")
        return
    if removed:
        logger.warning("removed %d model folders without a registry row: %s", len(removed), ", ".join(p.name for p in removed))
