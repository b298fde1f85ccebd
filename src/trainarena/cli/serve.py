"""`trainarena serve`: the unattended cycle (operations/serving.py) with a log on stdout, the HTTP API
beside it (unless ``--once``), and a clean stop on SIGTERM or Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Annotated

import typer

from trainarena.cli.api import SECOND_STOP, STOPPING, STOPPING_NOW, HostOption, PortOption, serve_api, sharing_devices
from trainarena.cli.demo import EXIT_STOPPED_AT_ONCE, threads_per_run
from trainarena.cli.output import fail, printable
from trainarena.execution import SandboxUnavailable
from trainarena.jobs import JobWorker
from trainarena.operations.drivers import BackgroundDrivers
from trainarena.operations.serving import ServeEvent, Serving, ServingThread
from trainarena.reporting.run_detail import write_result_json
from trainarena.runs import RunExecutor
from trainarena.settings import Settings
from trainarena.stopped_attempts import leave_notes_at_once
from trainarena.store import open_store


def print_event(json_output: bool) -> Callable[[ServeEvent], None]:
    def log(event: ServeEvent) -> None:
        # A text line may end with a script's stderr (a failed run's reason): escaped, as every CLI output prints it.
        line = json.dumps(event.to_json()) if json_output else printable(f"{event.at:%Y-%m-%dT%H:%M:%SZ} {event.message}")
        # One write with its newline: print writes them apart, and a line another thread (or the signal
        # handler) logged at that moment fell between them, two events on one line. No lock: the signal
        # handler may run while its own thread is logging.
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    return log


@contextmanager
def stop_on_signals(stop: threading.Event, say: Callable[[str], None]) -> Iterator[None]:
    """SIGTERM or SIGINT sets ``stop`` (the step under way finishes and is stored, then serve exits 0);
    a second one leaves at once: the runs it cuts short are withdrawn from the notes it leaves (no try
    counted) and run again as new attempts on the next start.
    (``serve --once``; served with the API, uvicorn's signal handling does the same: cli/api.py.)"""

    def handle(signum: int, _frame: object) -> None:
        if stop.is_set():
            say(STOPPING_NOW)
            leave_notes_at_once(SECOND_STOP.format(signal=signal.Signals(signum).name))
            os._exit(EXIT_STOPPED_AT_ONCE)
        stop.set()
        say(STOPPING.format(signal=signal.Signals(signum).name))

    previous = {number: signal.signal(number, handle) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def serve_with(settings: Settings, executor: RunExecutor, *, once: bool, parallel: int, json_output: bool,
               host: str | None = None, port: int | None = None, jobs: JobWorker | None = None) -> int:  # fmt: skip
    """Serve with this executor until stopped: the schedule on a thread beside the HTTP API (on
    ``host``/``port``, default the settings'), which can also start pool tournaments with it; or, with
    ``once``, the schedule alone until nothing is due. The job worker ``jobs`` runs beside the API too.
    The number of tournaments finished. Tests call it with a fake executor."""
    stop = threading.Event()
    log = print_event(json_output)
    with open_store(settings) as store:
        serving = Serving(store, settings, executor, log, stop, parallel=parallel,
                          on_stored=lambda run_id, run_dir: write_result_json(store, run_id, run_dir))
        say = partial(serving.say, "stopping")
        if once:
            with stop_on_signals(stop, say):
                return serving.run(once=True)

        def stop_soon(message: str) -> None:  # no new step starts while the API shuts down
            # Said before the stop is set: the schedule's thread logs "stopped" as soon as it sees it.
            say(message)
            stop.set()

        services = (ServingThread(serving), BackgroundDrivers(settings, executor, parallel=parallel))
        serve_api(settings, host, port, store=store, services=services, jobs=jobs, on_signal=stop_soon)
        return serving.finished


def serve_command(
    once: Annotated[bool, typer.Option("--once", help="Do what is due now (create, drive to the end, publish), then exit: for cron and tests.")] = False,
    parallel: Annotated[int, typer.Option(min=1, help="Runs played at once (each gets cores/parallel threads).")] = 1,
    unsafe: Annotated[bool, typer.Option("--unsafe", help="Run scripts without a sandbox (only where bubblewrap is missing and you trust them).")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Log one JSON object per line instead of text.")] = False,
    host: HostOption = None,
    port: PortOption = None,
) -> None:
    """Run the tournament cycle unattended, with the HTTP API beside it: a text and an image tournament on the schedule's cadence.

    Each is created from its pool when due (settings `schedule`), driven to the end, and the weights published. The API (docs/api.md) listens on --host/--port; --once serves no API. Killed and started again, it resumes from the store; SIGTERM or Ctrl-C stops it after the current step.
    """
    settings = threads_per_run(Settings(), parallel)
    try:
        tournaments, jobs = sharing_devices(settings, unsafe)
    except SandboxUnavailable as error:
        raise fail(str(error), json_output, code=2) from None
    try:
        serve_with(settings, tournaments, once=once, parallel=parallel, json_output=json_output, host=host, port=port,
                   jobs=None if once else jobs)
    finally:
        tournaments.close()
