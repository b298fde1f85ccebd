"""One run in full, as plain data read from the store: what ``trainarena runs show`` renders (and the
leaderboard's reasons come from); the lists of runs are ``reporting.run_list``. Nothing here prints.

A failure reason is shown whole here (summary and stderr tail, ``reporting.reasons``); tables show
its short form.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trainarena.contract import RunStatus
from trainarena.reporting.log_access import ALL_LOGS, LogsRule, LogsWithheldError, logs_withheld, platform_reason
from trainarena.reporting.reasons import short_reason, split_reason
from trainarena.reporting.references import ReferenceLine, reference_lines, run_label
from trainarena.runs import RESULT_FILE_NAME, TIMINGS_FILE
from trainarena.store import (
    Run,
    Store,
    TaskRow,
)
from trainarena.store.driving import Driving, drivers_of
from trainarena.store.models import AttemptStatus, Job, RunOrigin, Tournament, TournamentStatus
from trainarena.store.shown_status import CANCELLED, shown_outcome
from trainarena.tasks import score_direction

STDERR_LOG_NAME = "stderr.log"  # the script's stderr, in the run's log folder
LOG_NAMES = {"stderr": STDERR_LOG_NAME, "stdout": "stdout.log"}  # the logs the platform writes per run
RESULT_TAIL_LINES = 20  # stderr lines in result.json, and what `runs show` prints unless told otherwise
# The run's steps in timings.json, in the order a run does them (docs/benchmarks.md#overhead).
STEP_NAMES = ("prepare", "sandbox", "script", "artifact_check", "eval_startup", "eval_compute", "store")


class UnknownRunError(LookupError):
    """No run has the id asked for."""


class UnknownLogError(LookupError):
    """A run without the log asked for (not started yet, or its folder was cleaned up)."""


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


def attempt_lines(run: Run, *, scored: bool = True, script_output: bool = True) -> tuple[AttemptLine, ...]:
    """Every attempt of ``run``, oldest first; one still running of a run that reads cancelled reads so
    too (its driver's withdrawal is under way, or was lost with that driver: ``shown_outcome``). Not
    ``scored`` (:func:`not_scored_reason`): no attempt shows its evaluation's number. Not ``script_output``
    (``reporting.log_access``): reasons without the script's stderr."""
    cancelled = shown_outcome(run)[0] == CANCELLED
    lines = []
    for attempt in sorted(run.attempt_records, key=lambda a: a.number):
        driver = "-" if attempt.driver_host is None else f"{attempt.driver_host}:{attempt.driver_pid}"
        score = None if attempt.evaluation is None or not scored else attempt.evaluation.score
        status = CANCELLED if cancelled and attempt.status == AttemptStatus.RUNNING else attempt.status
        lines.append(AttemptLine(
            number=attempt.number, status=status, counts=attempt.id == run.counted_attempt_id, driver=driver,
            started_at=attempt.started_at, wall_seconds=attempt.wall_seconds, score=score,
            reason=short_reason(attempt.failure_reason if script_output else platform_reason(attempt.failure_reason)),
        ))
    return tuple(lines)


def score_of(run: Run) -> tuple[float | None, str | None]:
    """(score, direction) of the attempt that counts; (None, None) while none was scored. Every other
    outcome field (status, times, files, reason) ``Run`` itself reads from that attempt."""
    evaluation = run.evaluation
    return (None, None) if evaluation is None else (evaluation.score, evaluation.direction)


# Why a customer's job run shows no score though its evaluation has one: a job with validation_share 0
# holds out no rows of the customer's file, and the pipeline's evaluation measured rows the script
# trained on (``jobs.split``); the job, its model and its card have no score either.
NO_VALIDATION_ROWS = "not scored: the job kept no validation rows (validation_share 0), so its evaluation measured rows the model trained on"


def not_scored_reason(session: Session, run: Run) -> str | None:
    """Why ``run`` shows no score whatever its evaluation holds (:data:`NO_VALIDATION_ROWS`); None when
    its evaluation's score is its score."""
    if run.origin != RunOrigin.JOB:
        return None
    share = session.scalar(select(Job.validation_share).where(Job.run_id == run.id))
    return NO_VALIDATION_ROWS if share == 0 else None


def task_direction(task: TaskRow) -> str | None:
    """Which way scores on ``task`` are better (lower or higher), its task type's: known before any run
    of it scored, so a table's score column can say it for every row."""
    return score_direction(str(task.definition.get("task_type", "")))


def task_name(task: TaskRow) -> str:
    return str(task.definition.get("name", f"task{task.id}"))


# Where a stderr tail came from when its log is gone or empty (else the log's path, the operator's business).
RECORDED_TAIL = "recorded with the failure reason"


@dataclass(frozen=True)
class RunDetail:
    """Everything about one run: where it was played (a tournament's round and match, or ad hoc), by
    whom (a registered competitor, a working tree, or a reference), how it ended and where its files are."""

    run_id: int
    origin: str  # tournament | adhoc | audit | house | base_model (| job, for the operator)
    audit_of: int | None  # an audit's run: the run it re-measures
    tournament_id: int | None
    tournament: str | None
    round: int | None  # 1-based, as the bracket shows it
    stage: str | None
    match_id: str | None
    task: str
    task_digest: str | None  # runs.task_key: equal digests, comparable scores
    task_type: str
    base_model: str
    budget_seconds: float | None
    seed: int | None
    competitor: str  # the competitor's name, a working tree's folder name, the reference's name, or a job's script
    repo_url: str | None  # a competitor's repository, or a working tree's path
    commit: str | None
    dirty: bool | None  # a working tree with uncommitted changes
    snapshot_path: str | None  # the copy of a working tree the sandbox ran
    status: str
    attempts: int
    score: float | None
    direction: str | None
    not_scored: str | None  # why a run whose evaluation has a score shows none (NO_VALIDATION_ROWS); else None
    references: tuple[ReferenceLine, ...]
    reason: str  # one line, as tables show it
    summary: str  # the platform's full summary of a failure
    failure_reason: str | None  # the whole recorded text (summary and stderr tail)
    stderr_tail: str | None
    stderr_tail_from: str | None  # the stderr log file the tail was read from, or RECORDED_TAIL
    log_path: str | None
    artifact_path: str | None
    artifact_digest: str | None
    started_at: datetime | None
    finished_at: datetime | None
    wall_seconds: float | None
    steps: dict[str, float] | None  # the platform's seconds per step (STEP_NAMES order); None: not recorded
    attempt_history: tuple[AttemptLine, ...]
    # A running tournament run: who drives its tournament; not alive, the run is not training (its
    # status stays running until a drive resumes it). None for every other run.
    driver: Driving | None
    # Why the script's output (logs, stderr tails) is left out for the reader (reporting.log_access); None: shown.
    logs_withheld: str | None = None

    @property
    def lists_attempts(self) -> bool:
        """Whether ``runs show`` and the run page list the tries: more than one, or one not counted whose
        reason (withdrawn: the service stopped, its tournament was cancelled) no other field says."""
        return len(self.attempt_history) > 1 or any(not line.counts and line.reason for line in self.attempt_history)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("started_at", "finished_at"):
            data[key] = None if data[key] is None else data[key].isoformat()
        data["attempt_history"] = [line.to_json() for line in self.attempt_history]
        data["references"] = [line.to_json() for line in self.references]
        data["driver"] = None if self.driver is None else self.driver.to_json()
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
    return "\n".join(recorded.splitlines()[-lines:]), RECORDED_TAIL


def step_seconds(log_path: str | None) -> dict[str, float] | None:
    """The platform's seconds per step of the run, from the timings file of its folder (the log
    folder's parent), in the order the run did them; None when it has none (not run yet, a run from
    before timings were recorded, or its folder cleaned up)."""
    timings = Path(log_path).parent / TIMINGS_FILE if log_path else None
    try:
        known = json.loads(timings.read_text()) if timings is not None and timings.is_file() else None
    except (OSError, ValueError):  # half-written or damaged: no timings rather than no run
        return None
    if not isinstance(known, dict):
        return None
    steps = {name: float(known[name]) for name in STEP_NAMES
             if isinstance(known.get(name), int | float) and not isinstance(known[name], bool)}  # fmt: skip
    return steps or None


def place_of(run: Run) -> dict[str, Any]:
    """Where a run was played: its tournament, round and match, or nothing for an ad-hoc run."""
    match = run.task.match
    if match is None:
        return dict(tournament_id=None, tournament=None, round=None, stage=None, match_id=None)
    round_row = match.round
    return dict(tournament_id=round_row.tournament.id, tournament=round_row.tournament.name, round=round_row.index + 1,
                stage=round_row.stage, match_id=match.match_id)  # fmt: skip


def drivers_of_running(session: Session, runs: Iterable[Run]) -> dict[int, Driving]:
    """The driving of the tournament of each running tournament run of ``runs``, by tournament id, read
    at once for them all: a run marked running whose tournament no live driver holds (killed outright,
    its host gone) is not training, though its status says running until the next drive recovers it.
    Runs outside tournaments end with their own dead driver (``store.adhoc``)."""
    tournaments: dict[int, Tournament] = {}
    for run in runs:
        if run.status == RunStatus.RUNNING and run.task.match is not None:
            tournament = run.task.match.round.tournament
            if tournament.status == TournamentStatus.RUNNING:  # a cancelled one's read cancelled: no driver plays them
                tournaments[tournament.id] = tournament
    return drivers_of(session, list(tournaments.values()))


def _source(run: Run) -> dict[str, Any]:
    """What ran: a registered competitor's repository and commit, or a working tree's path and state."""
    if run.competitor is not None:
        return dict(repo_url=run.competitor.repo_url, commit=run.competitor.commit, dirty=None, snapshot_path=None)
    return dict(repo_url=run.source_path, commit=run.source_commit, dirty=run.source_dirty, snapshot_path=run.snapshot_path)


def visible_run(session: Session, run_id: int, *, private: bool = False) -> Run:
    """Run ``run_id``, or UnknownRunError; a customer's job run (``RunOrigin.PRIVATE``) only when
    ``private`` (the operator's CLI, the job's own records), as if it did not exist otherwise."""
    run = session.get(Run, run_id)
    if run is None or (run.origin in RunOrigin.PRIVATE and not private):
        raise UnknownRunError(f"no run with id {run_id}")
    return run


def read_run_detail(session: Session, run_id: int, *, tail_lines: int, private: bool = False,
                    logs: LogsRule = ALL_LOGS) -> RunDetail:
    """Run ``run_id`` in full, with the last ``tail_lines`` lines of its stderr (see ``_stderr_tail``);
    ``private``: see :func:`visible_run`. ``logs``: the rule the reader reads logs under
    (``log_access.logs_rule``); withheld, no log, tail or stderr in a reason is read."""
    run = visible_run(session, run_id, private=private)
    withheld = logs_withheld(session, run, logs)
    not_scored = not_scored_reason(session, run)
    score, direction = (None, None) if not_scored else score_of(run)
    task = run.task
    place = place_of(run)
    status, reason = shown_outcome(run)
    failure_reason = run.failure_reason
    if withheld:
        reason, failure_reason = platform_reason(reason), platform_reason(failure_reason)
    summary, recorded_tail = split_reason(reason)
    tail, tail_from = _stderr_tail(None if withheld else run.log_path, recorded_tail, tail_lines)
    budget, seed = task.definition.get("budget_seconds"), task.definition.get("seed")
    # A reference is not compared with itself; no reference is run on a job's task (the customer's data).
    compared = run.origin not in (*RunOrigin.REFERENCES, RunOrigin.JOB)
    return RunDetail(
        run_id=run.id,
        origin=run.origin,
        audit_of=run.audit_of_id,
        **place,
        task=task_name(task),
        task_digest=task.digest,
        task_type=str(task.definition.get("task_type", "-")),
        base_model=str(task.definition.get("base_model", "-")),
        budget_seconds=None if budget is None else float(budget),
        seed=None if seed is None else int(seed),
        competitor=run_label(run),
        **_source(run),
        status=status,
        attempts=run.attempts,
        score=score,
        direction=direction,
        not_scored=not_scored,
        references=reference_lines(session, task.digest, score, direction, None if seed is None else int(seed)) if compared else (),
        reason=short_reason(reason),
        summary=summary,
        failure_reason=failure_reason,
        stderr_tail=tail,
        stderr_tail_from=tail_from,
        log_path=None if withheld else run.log_path,
        artifact_path=run.artifact_path,
        artifact_digest=run.artifact_digest,
        started_at=run.started_at,
        finished_at=run.finished_at,
        wall_seconds=run.wall_seconds,
        steps=step_seconds(run.log_path),
        attempt_history=attempt_lines(run, scored=not_scored is None, script_output=withheld is None),
        driver=drivers_of_running(session, [run]).get(place["tournament_id"]),
        logs_withheld=withheld,
    )


def write_result_json(store: Store, run_id: int, run_dir: Path) -> Path:
    """``run_dir/result.json``: the run as ``runs show --json`` prints it, written once it has ended
    (``orchestrator.drive``'s ``on_stored`` for a tournament's runs; the workbench for ad-hoc ones)."""
    path = run_dir / RESULT_FILE_NAME
    run_dir.mkdir(parents=True, exist_ok=True)
    with store.session() as session:
        detail = read_run_detail(session, run_id, tail_lines=RESULT_TAIL_LINES, private=True)
    # Whole or not at all: a driver killed mid-write would leave half a file, which the next drive's
    # repair (it writes only a missing one) would keep.
    partial = path.with_name(f".{RESULT_FILE_NAME}.partial")
    partial.write_text(json.dumps(detail.to_json(), indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path


def read_run_log(session: Session, run_id: int, stream: str, *, tail_lines: int | None, private: bool = False,
                 logs: LogsRule = ALL_LOGS) -> str:
    """The run's ``stream`` log (a key of :data:`LOG_NAMES`), whole or its last ``tail_lines`` lines.
    Only the fixed file names in the run's own log folder are read: nothing a caller names as a path.
    A customer's job run is unknown here unless ``private`` (:func:`visible_run`); LogsWithheldError
    when the rule ``logs`` withholds it (``log_access.logs_rule``)."""
    run = visible_run(session, run_id, private=private)
    if (withheld := logs_withheld(session, run, logs)) is not None:
        raise LogsWithheldError(withheld)
    log = None if run.log_path is None else Path(run.log_path) / LOG_NAMES[stream]
    if log is None or not log.is_file():
        raise UnknownLogError(f"run {run_id} has no {LOG_NAMES[stream]} (not started yet, or its folder was cleaned up)")
    with log.open(encoding="utf-8", errors="replace") as handle:
        return "".join(handle if tail_lines is None else deque(handle, maxlen=tail_lines))
