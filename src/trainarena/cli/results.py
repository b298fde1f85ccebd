"""Rendering of tournament results and live progress with rich (shared by ``demo`` and ``tournament``)."""

from __future__ import annotations

import threading
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.tree import Tree

from trainarena.reporting.leaderboard import Leaderboard
from trainarena.runs import ProgressEvent

_STATUS_STYLE = {"succeeded": "green", "failed": "red", "timed_out": "yellow", "invalid": "magenta"}


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def print_bracket(console: Console, board: Leaderboard) -> None:
    """Every round, match and task with each competitor's score or failure; winners in bold."""
    tree = Tree(f"[bold]{board.tournament}[/bold] ({board.kind})")
    rounds: dict[tuple[int, str], Tree] = {}
    tasks: dict[tuple[int, str, str], Tree] = {}
    for line in board.runs:
        key = (line.round_index, line.stage)
        if key not in rounds:
            rounds[key] = tree.add(f"[cyan]round {line.round_index + 1}: {line.stage}[/cyan]")
        task_key = (line.round_index, line.match_id, line.task)
        if task_key not in tasks:
            tasks[task_key] = rounds[key].add(f"{line.match_id} · task [bold]{line.task}[/bold]")
        style = _STATUS_STYLE.get(line.status, "white")
        detail = _score(line.score) if line.status == "succeeded" else f"{line.status}: {_first_line(line.failure)}"
        tasks[task_key].add(f"{line.competitor:<14} [{style}]{detail}[/{style}]")
    console.print(tree)


def _first_line(text: str | None, limit: int = 100) -> str:
    """A one-line reason: the platform's summary line, plus the last line of the log tail if any."""
    if not text:
        return ""
    summary, _, tail = text.strip().partition("--- stderr tail ---")
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    reason = summary.strip().splitlines()[0] if summary.strip() else ""
    if lines and not reason.startswith("still running"):
        reason = f"{reason} {lines[-1]}".strip()
    return reason if len(reason) <= limit else reason[: limit - 1] + "…"


def print_leaderboard(console: Console, board: Leaderboard) -> None:
    table = Table(title=f"Leaderboard — {board.tournament}", title_style="bold")
    for column in ("#", "competitor", "reached", "runs ok", "score per task", "failed because", "weight"):
        table.add_column(column, overflow="fold")
    for standing in board.standings:
        table.add_row(
            "-" if standing.rank is None else str(standing.rank),
            f"[bold]{standing.competitor}[/bold]" if standing.competitor == board.champion else standing.competitor,
            standing.reached,
            f"{standing.runs_ok}/{standing.runs}",
            "\n".join(f"{task}: {score:.4f}" for task, score in standing.scores.items()) or "-",
            "\n".join(f"{task}: {_first_line(reason)}" for task, reason in standing.failures.items()) or "",
            "-" if standing.weight is None else f"{standing.weight:.3f}",
        )
    console.print(table)
    verdict = "crowned" if board.crowned else "retained the title" if board.champion == board.champion_before else ""
    console.print(f"[bold green]Champion:[/bold green] {board.champion or 'none'} {verdict}".rstrip())
    if board.reason:
        console.print(f"[dim]{board.reason}[/dim]")
    if board.undistributed is not None:
        console.print(f"[dim]undistributed weight: {board.undistributed:.3f}[/dim]")


class LiveProgress:
    """A rich progress display fed by the orchestrator's events: one bar for the round, one per active
    run showing its budget being spent (time left = budget - elapsed)."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._round: TaskID | None = None
        self._runs: dict[tuple[str | None, str | None], tuple[TaskID, float, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True)

    def __enter__(self) -> LiveProgress:
        self._progress.start()
        self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._ticker.join(timeout=2)
        self._progress.stop()

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                for task_id, started, budget in self._runs.values():
                    elapsed = time.monotonic() - started
                    self._progress.update(task_id, completed=min(elapsed, budget), note=f"{max(0.0, budget - elapsed):4.0f}s left")

    def __call__(self, event: ProgressEvent) -> None:
        with self._lock:
            # A resumed tournament announces no round: its first run opens the round's bar.
            if event.kind == "round_created" or (event.kind == "run_started" and self._round is None):
                label = f"[cyan]round {(event.round_index or 0) + 1} · {event.stage}[/cyan]"
                self._round = self._progress.add_task(label, total=event.runs_total, note="")
            if event.kind == "run_started":
                budget = event.budget_seconds or 0.0
                label = f"  {event.competitor} · {event.task_name}"
                task_id = self._progress.add_task(label, total=budget or None, note="")
                self._runs[(event.competitor, event.task_name)] = (task_id, time.monotonic(), budget)
            elif event.kind == "run_finished":
                entry = self._runs.pop((event.competitor, event.task_name), None)
                if entry is not None:
                    style = _STATUS_STYLE.get(str(event.status), "white")
                    note = f"[{style}]{event.status}[/{style}] {_score(event.score)}"
                    self._progress.update(entry[0], completed=entry[2], note=note)
                if self._round is not None:
                    self._progress.advance(self._round)
