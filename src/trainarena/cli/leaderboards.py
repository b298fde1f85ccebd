"""Rendering of the per-task leaderboard (``reporting.task_board``): one line per entrant; and of a task
found only by its runs (a tournament's task, as a bracket names it), for ``task show``."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from trainarena.cli.output import Col, OneLineTable, print_fields, print_wrapped, scored_columns, seconds_text
from trainarena.reporting.references import REFERENCE_LABELS
from trainarena.reporting.task_board import PlayedTask, TaskBoard, UnknownTaskError, played_task
from trainarena.settings import Settings
from trainarena.store import open_store
from trainarena.wording import ScoreColumn, counted

BOARD_COLUMNS = (
    Col("rank", justify="right"),
    Col("entrant", handle=True),  # a competitor's name, or a reference's label
    Col("kind"),
    Col("best", justify="right"),
    Col("run", justify="right"),
    Col("runs", justify="right"),
)


def print_task_board(console: Console, board: TaskBoard) -> None:
    better = "" if board.direction is None else f", {board.direction} is better"
    table = OneLineTable(scored_columns(BOARD_COLUMNS, "best", ScoreColumn([board.direction])), title=f"{board.task} (digest {board.digest[:12]}{better})")
    for line in board.lines:
        kind = "reference" if line.origin in REFERENCE_LABELS else line.origin.replace("adhoc", "ad hoc")
        table.add_row(["-" if line.rank is None else str(line.rank), line.entrant, kind,
                       "-" if line.best_score is None else f"{line.best_score:.4f}", str(line.best_run_id),
                       f"{line.runs_scored}/{line.runs}"])  # fmt: skip
    console.print(table)
    if board.other_digests:
        others = ", ".join(digest[:12] for digest in board.other_digests)
        console.print(f"other definitions named {board.task} (pass a digest prefix to see one): {others}", soft_wrap=True)


def stored_task_board(settings: Settings, key: str) -> TaskBoard | None:
    """The leaderboard of the task whose key (``runs.task_key``) is ``key``; None when nothing ran on it."""
    played = find_played_task(settings, key)
    return None if played is None else played.board


def find_played_task(settings: Settings, name: str) -> PlayedTask | None:
    """The task named ``name`` (or with a digest starting with it) that runs were made on, or None."""
    with open_store(settings) as store, store.session() as session:
        try:
            return played_task(session, name)
        except UnknownTaskError:
            return None


def print_played_task(console: Console, played: PlayedTask, name: str, leaderboard: bool) -> None:
    """What was played under ``name`` (as the user typed it): the definition, then the board, or how to
    see it."""
    details, board = played.to_json(), played.board
    digest = board.digest
    if board.other_digests and not leaderboard:  # the board names them itself
        others = ", ".join(other[:12] for other in board.other_digests)
        digest += f" (the newest definition of this name; the others, given by a digest prefix: {others})"
    fields = [
        ("task", f"{board.task} ({details['type']})"),
        ("digest", digest),
        ("base model", str(details["base_model"])),
        ("dataset", str((details["dataset"] or {}).get("source", "-"))),
        ("budget", f"{seconds_text(details['budget_seconds'])}, seed {details['seed']}"),
        ("score", f"{board.direction} is better" if board.direction else "none yet"),
        ("runs", f"{details['runs']} by {counted(details['entrants'], 'entrant')}"),
    ]
    print_fields(console, fields)
    if leaderboard:
        print_task_board(console, board)
    else:
        print_wrapped(console, Text(f"every run on it, best per entrant: trainarena task show {name} --leaderboard", style="dim"))
