"""One run in full, and lists of runs, as plain data read from the store: what ``trainarena runs show``
and ``runs list`` render (and the leaderboard's reasons come from). Nothing here prints.

A failure reason as the sandbox records it is a summary line, then ``--- stderr tail ---`` and the
last lines of the script's stderr. Tables show :func:`short_reason` (one line); the details keep both.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trainarena.store import Competitor, MatchRow, Round, Run, TaskRow, Tournament

# How execution/supervise.py joins a crash's summary and its log tail in the recorded reason.
STDERR_TAIL_MARKER = "--- stderr tail ---"
STDERR_LOG_NAME = "stderr.log"  # the script's stderr, in the run's log folder


class UnknownRunError(LookupError):
    """No run has the id asked for."""


def split_reason(text: str | None) -> tuple[str, str | None]:
    """(the platform's summary, the recorded stderr tail or None) of a failure reason."""
    if not text:
        return "", None
    summary, marker, tail = text.strip().partition(STDERR_TAIL_MARKER)
    return summary.strip(), (tail.strip("\n") or None) if marker else None


def short_reason(text: str | None) -> str:
    """A one-line reason: the summary's first line, plus the last line of the stderr tail (usually the
    exception) unless the run was stopped at its budget (then the tail is just its last progress)."""
    summary, tail = split_reason(text)
    reason = summary.splitlines()[0] if summary else ""
    tail_lines = [line.strip() for line in (tail or "").splitlines() if line.strip()]
    if tail_lines and not reason.startswith("still running"):
        reason = f"{reason} {tail_lines[-1]}".strip()
    return reason


@dataclass(frozen=True)
class CountedAttempt:
    """The outcome of the attempt that counts for a run: its status, times, files, score and reason."""

    status: str
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    wall_seconds: float | None
    log_path: str | None
    artifact_path: str | None
    artifact_digest: str | None
    failure_reason: str | None
    score: float | None
    direction: str | None


@dataclass(frozen=True)
class AttemptLine:
    """One try of a run, as ``runs show`` lists them: the interrupted ones stay on record."""

    number: int
    status: str
    counts: bool  # the attempt whose outcome is the run's
    driver: str  # host:pid of the driver process that executed it ("-" when not recorded)
    started_at: datetime | None
    wall_seconds: float | None
    score: float | None
    reason: str  # one line

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = None if self.started_at is None else self.started_at.isoformat()
        return data


def attempt_lines(run: Run) -> tuple[AttemptLine, ...]:
    """Every attempt of ``run``, oldest first."""
    lines = []
    for attempt in sorted(run.attempt_records, key=lambda a: a.number):
        driver = "-" if attempt.driver_host is None else f"{attempt.driver_host}:{attempt.driver_pid}"
        score = None if attempt.evaluation is None else attempt.evaluation.score
        lines.append(AttemptLine(
            number=attempt.number, status=attempt.status, counts=attempt.id == run.counted_attempt_id, driver=driver,
            started_at=attempt.started_at, wall_seconds=attempt.wall_seconds, score=score,
            reason=short_reason(attempt.failure_reason),
        ))
    return tuple(lines)


def counted_attempt(run: Run) -> CountedAttempt:
    """The one place reporting reads a run's outcome: the run's fields are those of the attempt that
    counts (``Run.counted_attempt``), or of none while it is pending or was abandoned."""
    evaluation = run.evaluation
    return CountedAttempt(
        status=run.status,
        attempts=run.attempts,
        started_at=run.started_at,
        finished_at=run.finished_at,
        wall_seconds=run.wall_seconds,
        log_path=run.log_path,
        artifact_path=run.artifact_path,
        artifact_digest=run.artifact_digest,
        failure_reason=run.failure_reason,
        score=None if evaluation is None else evaluation.score,
        direction=None if evaluation is None else evaluation.direction,
    )


def task_name(task: TaskRow) -> str:
    return str(task.definition.get("name", f"task{task.id}"))


@dataclass(frozen=True)
class RunDetail:
    """Everything about one run: where it was played, by whom, how it ended and where its files are."""

    run_id: int
    tournament_id: int
    tournament: str
    round: int  # 1-based, as the bracket shows it
    stage: str
    match_id: str
    task: str
    task_type: str
    base_model: str
    budget_seconds: float | None
    competitor: str
    repo_url: str
    commit: str
    status: str
    attempts: int
    score: float | None
    direction: str | None
    reason: str  # one line, as tables show it
    summary: str  # the platform's full summary of a failure
    failure_reason: str | None  # the whole recorded text (summary and stderr tail)
    stderr_tail: str | None
    stderr_tail_from: str | None  # the stderr log file the tail was read from, or "recorded with the failure reason"
    log_path: str | None
    artifact_path: str | None
    artifact_digest: str | None
    started_at: datetime | None
    finished_at: datetime | None
    wall_seconds: float | None
    attempt_history: tuple[AttemptLine, ...]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("started_at", "finished_at"):
            data[key] = None if data[key] is None else data[key].isoformat()
        data["attempt_history"] = [line.to_json() for line in self.attempt_history]
        return data


def _stderr_tail(log_path: str | None, recorded: str | None, lines: int) -> tuple[str | None, str | None]:
    """(the last ``lines`` lines of the run's stderr log, the log's path) while the log is there and not
    empty, else the tail recorded with the failure reason; nothing when ``lines`` is 0."""
    if lines <= 0:
        return None, None
    stderr_log = None if log_path is None else Path(log_path) / STDERR_LOG_NAME
    if stderr_log is not None and stderr_log.is_file():
        with stderr_log.open(encoding="utf-8", errors="replace") as handle:
            tail = "".join(deque(handle, maxlen=lines)).rstrip("\n")
        if tail:
            return tail, str(stderr_log)
    if recorded is None:
        return None, None
    return "\n".join(recorded.splitlines()[-lines:]), "recorded with the failure reason"


def read_run_detail(session: Session, run_id: int, *, tail_lines: int) -> RunDetail:
    """Run ``run_id`` in full, with the last ``tail_lines`` lines of its stderr (see ``_stderr_tail``)."""
    run = session.get(Run, run_id)
    if run is None:
        raise UnknownRunError(f"no run with id {run_id}")
    attempt = counted_attempt(run)
    task, match = run.task, run.task.match
    summary, recorded_tail = split_reason(attempt.failure_reason)
    tail, tail_from = _stderr_tail(attempt.log_path, recorded_tail, tail_lines)
    budget = task.definition.get("budget_seconds")
    return RunDetail(
        run_id=run.id,
        tournament_id=match.round.tournament.id,
        tournament=match.round.tournament.name,
        round=match.round.index + 1,
        stage=match.round.stage,
        match_id=match.match_id,
        task=task_name(task),
        task_type=str(task.definition.get("task_type", "-")),
        base_model=str(task.definition.get("base_model", "-")),
        budget_seconds=None if budget is None else float(budget),
        competitor=run.competitor.name,
        repo_url=run.competitor.repo_url,
        commit=run.competitor.commit,
        status=attempt.status,
        attempts=attempt.attempts,
        score=attempt.score,
        direction=attempt.direction,
        reason=short_reason(attempt.failure_reason),
        summary=summary,
        failure_reason=attempt.failure_reason,
        stderr_tail=tail,
        stderr_tail_from=tail_from,
        log_path=attempt.log_path,
        artifact_path=attempt.artifact_path,
        artifact_digest=attempt.artifact_digest,
        started_at=attempt.started_at,
        finished_at=attempt.finished_at,
        wall_seconds=attempt.wall_seconds,
        attempt_history=attempt_lines(run),
    )


@dataclass(frozen=True)
class RunSummary:
    """One run as a row of ``runs list``."""

    run_id: int
    tournament: str
    round: int
    stage: str
    task: str
    competitor: str
    status: str
    attempts: int
    score: float | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def list_runs(
    session: Session, *, tournament: str | None = None, competitor: str | None = None, status: str | None = None
) -> list[RunSummary]:
    """Runs in play order (tournament, round, match, task), optionally only those of one tournament
    (by name), one competitor (by name) or one status."""
    query = (
        select(Run)
        .join(Run.task)
        .join(TaskRow.match)
        .join(MatchRow.round)
        .join(Round.tournament)
        .join(Run.competitor)
        .order_by(Tournament.id, Round.index, MatchRow.position, TaskRow.index, Run.id)
    )
    if tournament is not None:
        query = query.where(Tournament.name == tournament)
    if competitor is not None:
        query = query.where(Competitor.name == competitor)
    if status is not None:
        query = query.where(Run.status == status)
    summaries = []
    for run in session.scalars(query):
        attempt = counted_attempt(run)
        round_row = run.task.match.round
        summaries.append(
            RunSummary(
                run_id=run.id,
                tournament=round_row.tournament.name,
                round=round_row.index + 1,
                stage=round_row.stage,
                task=task_name(run.task),
                competitor=run.competitor.name,
                status=attempt.status,
                attempts=attempt.attempts,
                score=attempt.score,
                reason=short_reason(attempt.failure_reason),
            )
        )
    return summaries
