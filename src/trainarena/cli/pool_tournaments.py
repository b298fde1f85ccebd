"""`trainarena tournament create | run | show | list`: tournaments on the operator's task pools
(operations/tournaments.py), registered on the `tournament` command group by cli/tournament.py."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from trainarena.cli.demo import EXIT_TOURNAMENT_BUSY, exit_stopped, stop_at_once_on_signals, threads_per_run
from trainarena.cli.named_tournaments import tournament_argument, tournament_id_of
from trainarena.cli.output import OneLineTable, fail, labelled, parse_utc, print_fields, print_wrapped, seed_option
from trainarena.cli.results import LiveProgress, print_bracket, print_leaderboard
from trainarena.cli.status import STATUS_COLUMNS, champion_cell, print_drivers, where_cell
from trainarena.cluster import make_executor
from trainarena.engine.model import TournamentKind
from trainarena.execution import SandboxUnavailable
from trainarena.operations.cancelling import CancelledTournament, cancel_tournament
from trainarena.operations.history import margin_text, tournament_detail
from trainarena.operations.tournaments import TournamentRefused, create_pool_tournament, run_pool_tournament
from trainarena.reporting.run_detail import write_result_json
from trainarena.runs import DriverStopped, RunNotStarted
from trainarena.settings import Settings
from trainarena.store import StoreError, TournamentStatus, list_tournaments, open_store, summarize_tournaments
from trainarena.store.leases import LeaseError
from trainarena.wording import counted

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]



def _parse_time(value: str | None, json_output: bool) -> datetime | None:
    """``--entry-closes``: the error names the option (typer's box said "Invalid value:" alone) and is
    JSON when the command was asked for JSON."""
    if value is None:
        return None
    try:
        return parse_utc(value)
    except ValueError as error:
        raise fail(f"--entry-closes {error}", json_output, code=2) from None


def create_command(
    kind: Annotated[TournamentKind, typer.Option("--kind", help="text or image.")],
    pool: Annotated[str, typer.Option("--pool", help="The task pool to draw from (see `trainarena task list --stored`).")],
    entry_closes: Annotated[str | None, typer.Option("--entry-closes", help="ISO time; competitors registered later do not enter (default: now; UTC when no zone).")] = None,
    seed: Annotated[int | None, seed_option("--seed", help="Tournament seed (default: random): the draw of tasks and the bracket follow from it.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Tournament name (default: KIND-POOL-N).")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Create a tournament on a task pool.

    Every registered competitor whose registration and manifest fit the pool enters (those left out are named, with the reason); the reigning champion of the kind defends in the boss round; the tasks are drawn from the pool without replacement (refused when the pool has too few).
    """
    settings = Settings()
    closes = _parse_time(entry_closes, json_output)
    with open_store(settings) as store, store.transaction() as session:
        try:
            created = create_pool_tournament(session, settings, kind=kind, pool=pool, entry_closes=closes, seed=seed, name=name)
        except TournamentRefused as error:
            raise fail(str(error), json_output) from None
    if json_output:
        typer.echo(json.dumps(created.to_json(), indent=2))
        return
    console = Console(highlight=False)
    print_fields(console, [
        ("tournament", f"{created.name} (id {created.id}, {created.kind}, pool {created.pool})"),
        ("entrants", ", ".join(created.entrants)),
        ("defending", created.defender or "nobody (the bracket's winner is crowned)"),
        ("tasks", f"{len(created.tasks)} drawn from the pool"),
    ])
    for competitor, reason in created.left_out:
        console.print(labelled(f"not entered: {competitor}", "yellow", reason), soft_wrap=True)
    for task, reason in created.unusable_tasks:
        console.print(labelled(f"not drawn: {task}", "yellow", reason), soft_wrap=True)
    console.print(Text(f"play it: trainarena tournament run {created.id}"), soft_wrap=True)


def run_command(
    tournament: Annotated[str, tournament_argument("The tournament to play (`tournament create` printed it)")],
    parallel: Annotated[int, typer.Option(min=1, help="Runs played at once (each gets cores/parallel threads).")] = 1,
    unsafe: Annotated[bool, typer.Option("--unsafe", help="Run scripts without a sandbox (only where bubblewrap is missing and you trust them).")] = False,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help=f"When another process drives it: wait for it, or exit at once with status {EXIT_TOURNAMENT_BUSY}.")] = True,
    json_output: JsonFlag = False,
) -> None:
    """Play a tournament to its end, then print the champion and the weights.

    Interrupted and run again, it resumes; one process drives a tournament at a time.
    """
    console = Console(stderr=json_output)
    settings = threads_per_run(Settings(), parallel)
    with open_store(settings) as store:
        tournament_id = tournament_id_of(store, tournament, json_output)
        try:
            executor = make_executor(settings, unsafe=unsafe)
        except SandboxUnavailable as error:
            raise fail(str(error), json_output, code=2) from None
        started = time.monotonic()
        command = f"trainarena tournament run {tournament_id}"
        try:
            stop_at_once_on_signals(console, command)
            with LiveProgress(console) as progress:
                result = run_pool_tournament(
                    store, settings, tournament_id, executor=executor, progress=progress, parallel=parallel, wait=wait,
                    on_wait=lambda holder: console.print(labelled("waiting", "yellow", f"another process drives it ({holder.describe()})")),
                    on_stored=lambda run_id, run_dir: write_result_json(store, run_id, run_dir),
                )
        except DriverStopped as stopped:
            exit_stopped(console, command, stopped)
        except RunNotStarted as error:  # the platform's (a full disk, no node): the drive stopped, naming it
            raise fail(str(error), json_output) from None
        except LeaseError as error:
            raise fail(f"not driving: {error}", json_output, code=EXIT_TOURNAMENT_BUSY) from None
        except StoreError as error:
            raise fail(str(error), json_output) from None
        finally:
            executor.close()
    if json_output:
        typer.echo(json.dumps({**result.to_json(), "wall_seconds": round(time.monotonic() - started, 1)}, indent=2))
        return
    # With nobody crowned the reason says why and ends in "no winner": the line says it once.
    console.print(f"champion: [bold]{result.champion or 'none'}[/bold] ({result.reason})", highlight=False)
    console.print(Text(f"details: trainarena tournament show {tournament_id}"), soft_wrap=True)


def show_command(tournament: Annotated[str, tournament_argument("The tournament to show")], json_output: JsonFlag = False) -> None:
    """Show a tournament: its bracket with every run's score, the standings, the boss round and the weights."""
    settings = Settings()
    with open_store(settings) as store:
        tournament_id = tournament_id_of(store, tournament, json_output)
        with store.session() as session:
            try:
                detail = tournament_detail(session, tournament_id, settings.rules)
            except StoreError as error:
                raise fail(str(error), json_output) from None
    if json_output:
        typer.echo(json.dumps(detail.to_json(), indent=2))
        return
    board, replayed = detail.board, detail.replayed
    console = Console(highlight=False)
    print_fields(console, [
        ("tournament", f"{board.tournament} (id {detail.id}, {board.kind}, {board.status})"),
        ("pool", f"{detail.pool}: {', '.join(detail.tasks or [])}" if detail.pool else "-"),
        ("defending", board.champion_before or "nobody"),
        *([("outcome", board.reason)] if board.status == TournamentStatus.CANCELLED else []),
        *([] if detail.driver is None else [("driver", detail.driver.describe())]),
    ])
    if board.runs or board.byes:
        print_bracket(console, board)
    if replayed.boss is not None:
        print_wrapped(console, f"boss round: {replayed.boss.challenger} against {replayed.boss.champion}: {margin_text(replayed.boss)}")
    print_leaderboard(console, board)


def cancel_command(
    tournament: Annotated[str, tournament_argument("The tournament to cancel")],
    reason: Annotated[str, typer.Option("--reason", help="Why, recorded as its outcome.")] = "",
    json_output: JsonFlag = False,
) -> None:
    """Cancel a tournament not finished: it is never driven again; a driver stops its runs and ends (with none alive, the cancel withdraws them).

    Cancelled already, it withdraws the runs a driver that died since left running and removes the files it left (exit 0), or, with none left, is refused (exit 1).

    One not started yet releases its drawn tasks and entrants; a started one keeps its records whole, its end signed as cancelled.
    """
    settings = Settings()
    with open_store(settings) as store:
        tournament_id = tournament_id_of(store, tournament, json_output)
        try:
            cancelled = cancel_tournament(store, settings, tournament_id, reason)
        except StoreError as error:
            raise fail(str(error), json_output, id=tournament_id) from None
    if json_output:
        typer.echo(json.dumps({"ok": True, **cancelled.to_json()}, indent=2))
        return
    settled = "".join(f"; {done}" for done in _settled(cancelled))
    if cancelled.already_cancelled_at is not None:
        print_wrapped(Console(highlight=False), f"{cancelled.name} (id {cancelled.id}) was cancelled already, at "
                      f"{cancelled.already_cancelled_at:%Y-%m-%d %H:%M:%S} UTC ({cancelled.reason}){settled}")
        return
    released = ("its drawn tasks and entrants are released" if cancelled.released
                else "its records stay whole: its tasks stay drawn and its entrants entered")
    print_wrapped(Console(highlight=False), f"cancelled {cancelled.name} (id {cancelled.id}): {released}{settled}")


def _settled(cancelled: CancelledTournament) -> list[str]:
    """What a cancel settled that a driver no longer alive had left: attempts running, leftover files."""
    done = []
    if cancelled.withdrawn:
        done.append(f"withdrew {counted(cancelled.withdrawn, 'attempt')} that its driver, no longer alive, had left running "
                    "(no try counted)")
    removed = [counted(count, noun, plural) for count, noun, plural in (
        (cancelled.notes_removed, "withdrawal note", None), (cancelled.early_runs_removed, "early run's folder", "early runs' folders"))
        if count]  # fmt: skip
    if removed:
        done.append(f"removed {' and '.join(removed)} left in its work folder")
    return done


LIST_COLUMNS = STATUS_COLUMNS[:7]  # without the outcome


def list_command(json_output: JsonFlag = False) -> None:
    """List the tournaments in the store, oldest first."""
    with open_store(Settings()) as store, store.session() as session:
        summaries = summarize_tournaments(session, list_tournaments(session))
    if json_output:
        typer.echo(json.dumps([s.to_json() for s in summaries], indent=2))
        return
    if not summaries:
        typer.echo("no tournaments yet: trainarena tournament create --kind text --pool POOL")
        return
    table = OneLineTable(LIST_COLUMNS, title="Tournaments")
    for s in summaries:
        table.add_row([str(s.id), s.name, s.kind, s.status, where_cell(s), f"{s.runs_done}/{s.runs_total}", champion_cell(s)])
    console = Console(highlight=False)
    console.print(table)
    print_drivers(console, summaries)
