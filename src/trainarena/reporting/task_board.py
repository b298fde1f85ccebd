"""A per-task leaderboard: every run ever made on a task (tournament, ad hoc and references; not an
audit's re-run, which re-measures one of them), as plain data (``trainarena task leaderboard NAME``
renders it).

A task is a name and a definition: runs are comparable only on the same definition (``task.digest``,
seed left out), so the board is for one digest: the one given, else the one of the task's newest run.
A customer's job's tasks and runs are private: they are never on a board nor found by name.
One line per entrant (a registered competitor, a working tree's path, each reference) with its best
score over all its runs there, ranked in the task's direction; entrants without a score follow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from trainarena.contract import Direction, RunStatus
from trainarena.engine.ranking import better_first_key
from trainarena.reporting.references import run_label
from trainarena.reporting.run_detail import score_of, task_name
from trainarena.reporting.run_list import TASK_DIGEST_PREFIX_MIN
from trainarena.store import Run, TaskRow
from trainarena.store.adhoc import runs_of_tasks
from trainarena.store.models import RunOrigin
from trainarena.tasks import score_direction


class UnknownTaskError(LookupError):
    """No run was ever made on a task of that name (or digest)."""


@dataclass(frozen=True)
class BoardLine:
    rank: int | None  # None: never scored on this task
    entrant: str
    origin: str  # tournament | adhoc | house | base_model (of the best run)
    best_score: float | None
    best_run_id: int  # the run that made the best score (the latest run when none scored)
    runs: int
    runs_scored: int


@dataclass(frozen=True)
class TaskBoard:
    task: str
    digest: str
    direction: str | None
    other_digests: list[str] = field(default_factory=list)  # other definitions under the same name
    lines: list[BoardLine] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _entrant(run: Run) -> str:
    """Runs of one entrant share this key: a competitor's name, a working tree's path, the reference."""
    if run.origin == RunOrigin.ADHOC and run.competitor is None and run.source_path is not None:
        return run.source_path
    return run_label(run)


def _public_tasks() -> Select[tuple[TaskRow]]:
    """Task rows that a public run (not a customer's job's) was made on. A job's task is the customer's:
    under a name a public task has too, it must neither hide that task's board (by being the newest
    row of the name) nor be listed among its other definitions, nor give the definition shown."""
    public_run = select(Run.id).where(Run.task_id == TaskRow.id, Run.origin.not_in(RunOrigin.PRIVATE)).exists()
    return select(TaskRow).where(TaskRow.digest.is_not(None), public_run)


def _digests(session: Session, name: str) -> list[str]:
    """The digests of the public tasks named ``name`` (or whose digest starts with it), newest first."""
    rows = session.execute(_public_tasks().with_only_columns(TaskRow.digest, TaskRow.definition).order_by(TaskRow.id.desc()))
    found: list[str] = []
    for digest, definition in rows:
        if (definition.get("name") == name or (len(name) >= TASK_DIGEST_PREFIX_MIN and digest.startswith(name))) and digest not in found:
            found.append(digest)
    return found


def played_task_names(session: Session) -> list[str]:
    """The names of the tasks public runs were made on, sorted: what has a task page."""
    return sorted({task_name(row) for row in session.scalars(_public_tasks())})


def task_board(session: Session, name: str) -> TaskBoard:
    """The leaderboard of the task named ``name`` (or with a digest starting with ``name``)."""
    digests = _digests(session, name)
    if not digests:
        raise UnknownTaskError(f"no run was ever made on a task named {name!r}")
    digest = digests[0]
    public = [run for run in runs_of_tasks(session, [digest]) if run.origin not in RunOrigin.PRIVATE]
    # An audit's run re-measures a run already on the board: counting it would make it the competitor's
    # run twice (and its best, when the re-measurement scored better).
    runs = [run for run in public if run.origin != RunOrigin.AUDIT]
    by_entrant: dict[str, list[Run]] = {}
    for run in runs:
        by_entrant.setdefault(_entrant(run), []).append(run)
    # Before any run is scored, the task's type still says which way is better.
    direction = next((d for _, d in map(score_of, runs) if d), None) or score_direction(public[0].task.definition.get("task_type", ""))
    better = Direction(direction or Direction.LOWER)  # no run scored: the order does not matter
    lines = [_line(entrant, own, better) for entrant, own in by_entrant.items()]
    scored = sorted(((line.best_score, line) for line in lines if line.best_score is not None),
                    key=lambda pair: (better_first_key(pair[0], better), pair[1].best_run_id))  # fmt: skip
    ranked = [BoardLine(**{**asdict(line), "rank": rank}) for rank, (_, line) in enumerate(scored, start=1)]
    unscored = sorted((line for line in lines if line.best_score is None), key=lambda line: line.best_run_id)
    return TaskBoard(task_name(public[0].task), digest, direction, digests[1:], ranked + unscored)


def _line(entrant: str, runs: list[Run], better: Direction) -> BoardLine:
    outcomes = [(score_of(run)[0], run) for run in runs if run.status == RunStatus.SUCCEEDED]
    scored = [(score, run) for score, run in outcomes if score is not None]
    if scored:
        score, best = min(scored, key=lambda pair: (better_first_key(pair[0], better), pair[1].id))
    else:
        score, best = None, runs[-1]
    return BoardLine(None, entrant, best.origin, score, best.id, len(runs), len(scored))


@dataclass(frozen=True)
class PlayedTask:
    """A task runs were made on (a tournament's, an ad-hoc run's), found as :func:`task_board` finds it
    (by name or digest prefix): its board and the definition played under the board's digest (the
    newest task row's: the seed may differ between the rows of one digest)."""

    board: TaskBoard
    definition: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        definition = self.definition
        return {
            "name": self.board.task, "digest": self.board.digest, "type": definition.get("task_type"),
            "base_model": definition.get("base_model"), "dataset": definition.get("dataset"),
            "budget_seconds": definition.get("budget_seconds"), "seed": definition.get("seed"),
            "direction": self.board.direction, "other_digests": self.board.other_digests,
            "runs": sum(line.runs for line in self.board.lines), "entrants": len(self.board.lines),
        }  # fmt: skip


def played_task(session: Session, name: str) -> PlayedTask:
    """The task named ``name`` (or with a digest starting with ``name``) that runs were made on;
    UnknownTaskError when none was."""
    board = task_board(session, name)
    newest = _public_tasks().with_only_columns(TaskRow.definition).where(TaskRow.digest == board.digest).order_by(TaskRow.id.desc()).limit(1)
    return PlayedTask(board, dict(session.scalars(newest).one()))
