"""`trainarena api`: the HTTP API alone (no tournament schedule), served by uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from trainarena.api import create_app
from trainarena.jobs import JobWorker
from trainarena.settings import Settings

HostOption = Annotated[str | None, typer.Option("--host", help="Address to listen on; default settings api.host (127.0.0.1).")]
PortOption = Annotated[int | None, typer.Option("--port", help="Port to listen on; default settings api.port (8000).")]


def serve_api(settings: Settings, host: str | None, port: int | None, services: tuple = ()) -> None:
    """Serve the API until SIGTERM or Ctrl-C (uvicorn's own handling: requests in flight finish)."""
    app = create_app(settings, services=services)
    uvicorn.run(app, host=host or settings.api.host, port=settings.api.port if port is None else port,
                log_level="info", access_log=False)  # fmt: skip


def api_command(host: HostOption = None, port: PortOption = None) -> None:
    """Serve the HTTP API (docs at /docs, schema at /openapi.json) and the job worker, no schedule."""
    settings = Settings()
    serve_api(settings, host, port, services=(JobWorker(settings),))
