"""`trainarena api`: the HTTP API alone (no tournament schedule), served by uvicorn; and the serving
both `api` and `serve` share: a stop signal stops the API and its services, then exits 0."""

from __future__ import annotations

import logging
import os
import signal
import socket
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Annotated

import typer
import uvicorn

from trainarena.api import create_app
from trainarena.api.app import Service
from trainarena.cli.demo import EXIT_STOPPED_AT_ONCE
from trainarena.cli.output import fail
from trainarena.cluster import Executor, make_executor
from trainarena.execution import SandboxUnavailable
from trainarena.jobs import TOURNAMENT, DeviceGate, GatedBackend, JobWorker
from trainarena.operations.drivers import BackgroundDrivers
from trainarena.settings import Settings
from trainarena.settings.service import PORT_ANY, PORT_MAX
from trainarena.stopped_attempts import leave_notes_at_once
from trainarena.store import Store

HostOption = Annotated[str | None, typer.Option("--host", help="Address to listen on; default settings api.host (127.0.0.1).")]
PortOption = Annotated[int | None, typer.Option("--port", min=PORT_ANY, max=PORT_MAX,
                                               help="Port to listen on (0: any free port); default settings api.port (8000).")]

# What a stop signal says: the first lets the step under way finish; a second leaves at once.
STOPPING = "{signal}: stopping after the current step (again to stop at once)"
# How a drive's attempts were stopped, in their withdrawal's reason, when a second signal left at once.
SECOND_STOP = "a second stop signal ({signal})"
STOPPING_NOW = "stopping now: runs in flight are withdrawn (no try counted) and run again as new attempts on the next start"


class StoppingServer(uvicorn.Server):
    """uvicorn's server with trainarena's stop: the first SIGTERM or Ctrl-C stops the API, then its
    services (each finishes and stores its step), and the process exits 0 (uvicorn would raise the
    signal again, reporting the process as killed); a second one leaves at once, after
    ``before_leaving`` (the job worker's tries recorded as withdrawn: ``JobWorker.leave_now``) and the
    notes of its tournament drives' withdrawals (``stopped_attempts.leave_notes_at_once``)."""

    def __init__(self, config: uvicorn.Config, on_signal: Callable[[str], None], before_leaving: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_signal = on_signal
        self._before_leaving = before_leaving

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit:
            self._on_signal(STOPPING_NOW)
            leave_notes_at_once(SECOND_STOP.format(signal=signal.Signals(sig).name))
            self._before_leaving()
            os._exit(EXIT_STOPPED_AT_ONCE)
        super().handle_exit(sig, frame)  # first: a second signal arriving while we say so is a second one
        self._captured_signals.clear()
        self._on_signal(STOPPING.format(signal=signal.Signals(sig).name))


def serve_api(settings: Settings, host: str | None, port: int | None, *, store: Store | None = None,
              services: Sequence[Service] = (), jobs: JobWorker | None = None,
              on_signal: Callable[[str], None] | None = None) -> None:  # fmt: skip
    """Serve the API (over ``store``, or one opened from ``settings``) with ``services`` and the job
    worker ``jobs`` beside it (stopped first) until SIGTERM or Ctrl-C. ``on_signal`` is told at once
    what a stop signal does (default: said on stderr), before the API stops and then its services."""
    app = create_app(settings, store=store, services=(*services, *([] if jobs is None else [jobs])))
    config = uvicorn.Config(app, host=host or settings.api.host, port=settings.api.port if port is None else port,
                            log_level="info", access_log=False)  # fmt: skip
    say = on_signal or (lambda message: typer.echo(message, err=True))
    listening = _listening_socket(config)
    StoppingServer(config, say, (lambda: None) if jobs is None else jobs.leave_now).run(sockets=[listening])


def _listening_socket(config: uvicorn.Config) -> socket.socket:
    """The API's socket, bound before the app starts its services. uvicorn binds after them: with the
    port in use, serve's schedule created and played a tournament, then logged "stopped on request",
    and exited 3. (uvicorn's ``Config.bind_socket`` exits without closing the socket it made.)"""
    listening = socket.socket(socket.AF_INET6 if ":" in config.host else socket.AF_INET)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((config.host, config.port))
    except OSError as error:
        listening.close()
        raise fail(f"the API cannot listen on {config.host} port {config.port}: {error.strerror or error}; nothing was "
                   "started (--host and --port, settings api.host and api.port)") from None
    # uvicorn says this itself only for a socket it binds: the port, which port 0 leaves to the system
    logging.getLogger("uvicorn.error").info("Uvicorn running on http://%s:%d (Press CTRL+C to quit)", config.host,
                                            listening.getsockname()[1])
    return listening


def sharing_devices(settings: Settings, unsafe: bool = False) -> tuple[Executor, JobWorker]:
    """The tournaments' executor (``make_executor``) and a job worker, sharing the devices through one
    gate (settings jobs.share_with_tournaments): a job never runs beside a tournament run on one GPU."""
    gate = DeviceGate(settings.jobs.share_with_tournaments)
    tournaments = make_executor(settings, unsafe, wrap=lambda backend: GatedBackend(backend, gate, TOURNAMENT))
    return tournaments, JobWorker(settings, gate=gate)


def api_command(host: HostOption = None, port: PortOption = None) -> None:
    """Serve the HTTP API (docs at /docs, schema at /openapi.json) and the job worker, without the tournament schedule.

    Operators may start pool tournaments through it (POST /v1/tournaments/{id}/start): they are played in this process, in the configured sandbox, sharing the devices with jobs by settings jobs.share_with_tournaments.
    """
    settings = Settings()
    try:
        tournaments, jobs = sharing_devices(settings)
    except SandboxUnavailable as error:
        reason = f"this API process has no sandbox to play runs in: {error}"
        typer.echo(f"warning: {reason}; tournaments cannot be started here and jobs stay queued", err=True)
        serve_api(settings, host, port, services=(BackgroundDrivers(settings, None, unavailable=reason),))
        return
    try:
        # Stopped in reverse: the jobs first. A job waiting at the gate then gives up at once (queued
        # again), where stopping the drivers first (they let their runs under way finish) would let it
        # start its run as theirs ended, only to be stopped.
        serve_api(settings, host, port, services=(BackgroundDrivers(settings, tournaments),), jobs=jobs)
    finally:
        tournaments.close()
