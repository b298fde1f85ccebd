"""`trainarena demo`: a whole text tournament of instruct tasks on the CPU, sandboxed, to a champion."""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from trainarena.assets import ensure_assets
from trainarena.cli.output import budget_seconds_option, check_path, print_wrapped, seed_option
from trainarena.cli.records import records_hint
from trainarena.cli.results import LiveProgress, print_bracket, print_leaderboard
from trainarena.cluster import make_executor
from trainarena.demo.text import DEFAULT_CHAMPION, TEXT_DEMO_BUDGET_SECONDS, demo_task_source, set_up_demo
from trainarena.execution import SandboxUnavailable
from trainarena.orchestrator import drive
from trainarena.records.recorder import recorder_for
from trainarena.reporting.leaderboard import build_leaderboard
from trainarena.reporting.run_detail import write_result_json
from trainarena.runs import DriverStopped, RunNotStarted, deferred_in_database_call
from trainarena.settings import Settings
from trainarena.stopped_attempts import leave_notes_at_once
from trainarena.store import StoreError, load_tournament, named_lock, open_store
from trainarena.store.leases import LeaseError, LeaseHolder
from trainarena.submissions import RegistrationError

# Exit status when another driver holds the tournament (--no-wait) or took it over: EX_TEMPFAIL,
# "try again later", distinct from errors (1) and bad usage (2).
EXIT_TOURNAMENT_BUSY = 75
# A stop that leaves at once, runs in flight cut short, exits with this status (128 + SIGINT, as a shell
# reports Ctrl-C): serve on its second stop signal; demo and tournament run exit with 128 + the signal's
# number (130 for Ctrl-C, 143 for SIGTERM: exit_stopped).
EXIT_STOPPED_AT_ONCE = 130
# How long demo and tournament run, told to stop, may take to withdraw their runs before leaving anyway.
STOP_CLEAN_UP_SECONDS = 30.0
# Runs the demo plays at once (`--parallel`): two slots share the cores (threads_per_run).
DEMO_PARALLEL = 2


def threads_per_run(settings: Settings, parallel: int) -> Settings:
    """Split the machine's cores between the runs played at once, unless the operator set the number:
    oversubscribed torch threads run small models several times slower. On a Ray cluster a run gets the
    CPUs it asks its node for (``cluster.cpus_per_run``), whatever this driver's cores. Evaluations keep
    their pinned thread count (``data.eval_cpu_threads``): a CPU score's last bits depend on it, not on
    ``parallel``."""
    if settings.cluster.executor == "ray":
        cpus = max(1, math.ceil(settings.cluster.cpus_per_run))
    else:
        cpus = max(1, (os.cpu_count() or 1) // parallel)
    sandbox = settings.sandbox
    return settings.model_copy(
        update={"sandbox": sandbox if sandbox.cpus_per_run else sandbox.model_copy(update={"cpus_per_run": cpus})}
    )


_watchdogs: list[threading.Timer] = []  # the clean-up's time limit, once a stop signal came


def stop_at_once_on_signals(console: Console, command: str) -> None:
    """SIGINT (Ctrl-C) or SIGTERM (``kill``, ``docker stop``, ``systemctl stop``) ends ``command`` (as
    the user typed it, e.g. ``trainarena demo``) now instead of after the runs in flight: the signal
    raises :class:`DriverStopped` on the driving thread, so the drive kills its runs at once (their
    sandboxes with them), records their attempts as withdrawn (the platform's own stop costs no
    competitor a try), and releases the lease; the caller then says so (:func:`exit_stopped`). Every
    finished step is already committed. A second signal, or a clean-up taking more than
    :data:`STOP_CLEAN_UP_SECONDS`, leaves at once, leaving the note of the withdrawal of the attempts
    not withdrawn yet: the next drive, or a cancel, withdraws them (``stopped_attempts``)."""
    stopping: list[int] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        if stopping:
            leave_notes_at_once(f"{signal.Signals(stopping[0]).name}, then {signal.Signals(signum).name}")
            os._exit(128 + signum)
        if deferred_in_database_call(signum, frame):  # raised a moment later, out of the driver's call
            return
        stopping.append(signum)
        watchdog = threading.Timer(STOP_CLEAN_UP_SECONDS, exit_stopped, (console, command, DriverStopped(signum)))
        watchdog.daemon = True
        _watchdogs.append(watchdog)
        watchdog.start()
        raise DriverStopped(signum)

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, stop)


def exit_stopped(console: Console, command: str, stopped: DriverStopped) -> NoReturn:
    """Say that ``command`` was stopped and how to resume it, and exit with 128 + the signal's number
    (130 for SIGINT, 143 for SIGTERM, as a shell reports them), skipping the interpreter's clean-up
    (which would wait for threads of runs already ended). Called by the clean-up's time limit, with
    the drive still under way, it leaves the note of its withdrawal first."""
    while _watchdogs:
        _watchdogs.pop().cancel()
    leave_notes_at_once(f"{stopped.signal_name}, its clean-up cut short after {STOP_CLEAN_UP_SECONDS:g} s")
    console.print(f"\n[yellow]interrupted[/yellow] ({stopped.signal_name}): finished runs are kept and the runs cut "
                  f"short cost no try; run `{command}` again to resume", highlight=False, soft_wrap=True)
    console.file.flush()
    sys.stdout.flush()
    os._exit(128 + stopped.signum)


def demo_command(
    seed: Annotated[int, seed_option("--seed", help="Tournament seed: the draw and the tasks follow from it.")] = 1,
    budget: Annotated[float | None, typer.Option(callback=budget_seconds_option, help="Training budget of every run, in seconds (default: 30 text, 45 image).")] = None,
    parallel: Annotated[int, typer.Option(min=1, help="Runs played at once (each gets cores/parallel threads).")] = DEMO_PARALLEL,
    unsafe: Annotated[bool, typer.Option("--unsafe", help="Run scripts without a sandbox (only where bubblewrap is missing and you trust them).")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object (champion, leaderboard) instead of tables.")] = False,
    examples: Annotated[Path | None, typer.Option(help=f"A folder of competitor repositories, played instead of the bundled examples/competitors: each folder in it that is a git repository with a valid trainarena.toml is registered at its HEAD commit under the folder's name and enters (one named as the default champion, {DEFAULT_CHAMPION} in a text demo, defends); the others are named with the reason they are left out.")] = None,
    kind: Annotated[str, typer.Option(help="Tournament kind: text (instruct tasks, tiny LLaMA) or image (person/style LoRA, tiny SD pipeline).")] = "text",
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help=f"When another process is already playing the demo on this store: wait for it and print its result, or exit at once with status {EXIT_TOURNAMENT_BUSY}.")] = True,
) -> None:
    """Play a whole small tournament on the CPU, from registration to a champion.

    Example competitors (honest, crashing, over-budget and hostile) train on tasks built offline (a tiny LLaMA for text, a tiny Stable-Diffusion-shaped pipeline for images), sandboxed; every model is scored on a hidden split; a boss round is played against the reigning champion. Interrupted and run again, it resumes.
    """
    if examples is not None:
        check_path(examples, "--examples", folder=True, json_output=json_output, examples=str(examples))
    console = Console(stderr=json_output)
    settings = threads_per_run(Settings(), parallel)
    try:
        executor = make_executor(settings, unsafe=unsafe)
    except SandboxUnavailable as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(code=2) from error
    started = time.monotonic()
    if kind not in ("text", "image"):
        console.print(f"[red]error:[/red] --kind must be text or image, not {kind!r}")
        raise typer.Exit(code=2)
    with console.status("building the offline model and datasets (first run only)"):
        task_source = _demo_task_source(kind, settings, budget)
    store = open_store(settings)
    try:
        # Demos started together must not both register the examples or both create the tournament.
        with console.status("registering the example competitors"), named_lock(store.engine, "demo-set-up"):
            try:
                setup = set_up_demo(store, settings, seed=seed, examples=examples, kind=kind)
            except StoreError as error:  # nothing in --examples to play: each folder and why
                console.print(f"[red]error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True)
                raise typer.Exit(code=1) from None
        for folder, why in setup.left_out:
            console.print(f"[yellow]left out of the demo:[/yellow] {escape(folder)}: {escape(why)}", highlight=False, soft_wrap=True)
        for warning in setup.warnings:
            console.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False, soft_wrap=True)
        verb = "resuming" if setup.resumed else "playing"
        console.print(f"[bold]{verb} {setup.tournament_name}[/bold] (store: {settings.db_url}, sandbox: {executor.name})")
        command = "trainarena demo" + ("" if kind == "text" else f" --kind {kind}")
        stop_at_once_on_signals(console, command)
        with LiveProgress(console) as progress:
            finished = drive(
                store,
                setup.tournament_id,
                task_source=task_source,
                executor=executor,
                rules=settings.rules,
                weight_rules=settings.weights,
                work_dir=settings.work_dir,
                progress=progress,
                parallel=parallel,
                lease_rules=settings.lease,
                wait=wait,
                on_wait=lambda holder: _say_waiting(console, holder),
                on_stored=lambda run_id, run_dir: write_result_json(store, run_id, run_dir),
                recorder=recorder_for(settings),
            )
        with store.session() as session:
            board = build_leaderboard(session, load_tournament(session, setup.tournament_id), finished)
    except DriverStopped as stopped:
        exit_stopped(console, command, stopped)
    except RunNotStarted as error:  # the platform's (a full disk, no node): the drive stopped, naming it
        console.print(f"[red]error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None
    except LeaseError as error:
        console.print(f"[yellow]not driving:[/yellow] {error}")
        raise typer.Exit(code=EXIT_TOURNAMENT_BUSY) from error
    except RegistrationError as error:  # e.g. an unchanged copy of an example was registered under another name
        console.print(f"[red]cannot register the demo's examples:[/red] {escape(str(error))}", highlight=False)
        console.print(f"the demo needs its examples under their own names; run it in a data directory of its own "
                      f"(TRAINARENA_DATA_DIR=/tmp/demo trainarena demo), or remove the competitor named above "
                      f"from {settings.data_dir}", highlight=False)
        raise typer.Exit(code=2) from error
    finally:
        store.close()
        executor.close()
    if json_output:
        typer.echo(json.dumps({**board.to_json(), "wall_seconds": round(time.monotonic() - started, 1)}, indent=2))
    else:
        print_bracket(console, board)
        print_leaderboard(console, board)
        print_wrapped(console, Text(f"{time.monotonic() - started:.0f} s · `trainarena status` shows every tournament in the store", style="dim"))
    if settings.records.enabled:  # on stderr with --json: the JSON object on stdout keeps its shape
        print_wrapped(console, records_hint(setup.tournament_id))


def _say_waiting(console: Console, holder: LeaseHolder) -> None:
    console.print(f"[yellow]waiting:[/yellow] another process drives this tournament ({holder.describe()}); "
                  "its result is printed when it finishes (Ctrl-C stops waiting; --no-wait exits at once)")


def _demo_task_source(kind: str, settings: Settings, budget: float | None):
    """Build (or find) the offline assets of the demo's kind and draw its tasks from them."""
    if kind == "image":
        from trainarena.assets.image import ensure_image_assets
        from trainarena.demo.image import IMAGE_DEMO_BUDGET_SECONDS, image_demo_task_source

        return image_demo_task_source(ensure_image_assets(settings.assets_dir), budget or IMAGE_DEMO_BUDGET_SECONDS)
    return demo_task_source(ensure_assets(settings.assets_dir), budget or TEXT_DEMO_BUDGET_SECONDS, settings.task_mix)
