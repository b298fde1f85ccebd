"""Rendering of the per-task leaderboard (``reporting.task_board``): one line per entrant."""

from __future__ import annotations

from rich.console import Console

from trainarena.cli.output import Col, OneLineTable
from trainarena.reporting.references import REFERENCE_LABELS
from trainarena.reporting.task_board import TaskBoard, UnknownTaskError, task_board
from trainarena.settings import Settings
from trainarena.store import open_store

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
    table = OneLineTable(BOARD_COLUMNS, title=f"{board.task} (digest {board.digest[:12]}{better})")
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
    with open_store(settings) as store, store.session() as session:
        try:
            return task_board(session, key)
        except UnknownTaskError:
            return None
