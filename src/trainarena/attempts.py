"""An attempt's end written to the store: its report (status, times, artifact, evaluation) stored, or
its interruption (no report: the run is tried again, or given up by its caller), or its withdrawal
(the run never started, for want of a node or of disk: a tournament's as if never claimed, a job's
kept as withdrawn, costing no try). Shared by the
tournament driver, customer jobs, ad-hoc runs and audits, so an attempt ends the same way in each."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from trainarena.contract import Direction, RunStatus
from trainarena.runs import RunReport
from trainarena.store import AttemptStatus, EvaluationRow, Run, RunAttempt, tournament_runs
from trainarena.store.leases import DriverIdentity

__all__ = [
    "interrupt_attempt",
    "interrupt_running_attempts",
    "recover_interrupted",
    "store_report",
    "to_run_again",
    "withdraw_attempt",
    "withdraw_own_attempts",
    "withdraw_running_attempts",
    "withdraw_tournament_attempts",
]


def interrupt_running_attempts(run: Run, reason: str) -> None:
    """The run's running attempt ended with no report stored: recorded as interrupted, with ``reason``."""
    for attempt in run.attempt_records:
        if attempt.status == AttemptStatus.RUNNING:
            attempt.interrupt(reason)


def withdraw_running_attempts(run: Run, reason: str) -> None:
    """The run's running attempt never started, for the platform's want (``RunNotStarted``): kept,
    recorded as withdrawn with ``reason``, so it costs no try (``Run.tries``) and shows what happened."""
    for attempt in run.attempt_records:
        if attempt.status == AttemptStatus.RUNNING:
            attempt.withdraw(reason)


def to_run_again(run: Run, attempt: RunAttempt, reason: str) -> None:
    """The attempt ended without a report: recorded as interrupted, and its run PENDING again."""
    attempt.interrupt(reason)
    run.status = RunStatus.PENDING.value


def store_report(session: Session, run_id: int, attempt_number: int, report: RunReport) -> None:
    run = session.get_one(Run, run_id)
    attempt = next(a for a in run.attempt_records if a.number == attempt_number)
    if attempt.status != AttemptStatus.RUNNING:
        raise RuntimeError(f"run {run_id} attempt {attempt_number} is {attempt.status}, not running: not storing its report")
    attempt.status = run.status = RunStatus(report.status).value
    attempt.started_at = datetime.fromtimestamp(report.started_at, UTC)
    attempt.finished_at = datetime.fromtimestamp(report.finished_at, UTC)
    attempt.wall_seconds = report.wall_seconds
    attempt.log_path = None if report.log_path is None else str(report.log_path)
    attempt.artifact_path = None if report.artifact_path is None else str(report.artifact_path)
    attempt.artifact_digest = report.artifact_digest
    attempt.failure_reason = report.failure_reason
    run.counted_attempt = attempt
    if report.prepared_paths is not None and run.task.prepared is None:
        run.task.prepared = dict(report.prepared_paths)
    evaluation = report.evaluation
    if evaluation is not None:
        score, failure = evaluation.score, evaluation.failure
        if score is not None and not math.isfinite(score):
            # NaN/inf is a failed evaluation; SQL columns cannot hold it faithfully anyway.
            score, failure = None, failure or f"score is not finite: {score}"
        attempt.evaluation = EvaluationRow(
            score=score,
            direction=Direction(evaluation.direction).value,
            lead_unit=evaluation.lead_unit,
            failure=failure,
            per_example=list(evaluation.per_example),
            details=dict(evaluation.details),
        )


def _running_attempt(session: Session, run_id: int, attempt_number: int, doing: str) -> tuple[Run, RunAttempt]:
    """The run and its attempt ``attempt_number``, which must be running (else nothing is ``doing`` to it)."""
    run = session.get_one(Run, run_id)
    attempt = next(a for a in run.attempt_records if a.number == attempt_number)
    if attempt.status != AttemptStatus.RUNNING:
        raise RuntimeError(f"run {run_id} attempt {attempt_number} is {attempt.status}, not running: not {doing} it")
    return run, attempt


def interrupt_attempt(session: Session, run_id: int, attempt_number: int, reason: str) -> None:
    """A running attempt the executor lost (``RunInterrupted``): recorded as interrupted with the
    reason, and its run PENDING again, to be tried in a new attempt. Nothing of it is scored."""
    run, attempt = _running_attempt(session, run_id, attempt_number, "interrupting")
    to_run_again(run, attempt, reason)


def withdraw_attempt(session: Session, run_id: int, attempt_number: int) -> None:
    """A running attempt whose run the executor could not start (``RunNotStarted``: no node can hold
    it): removed, and its run PENDING again, as if never claimed. Nothing of the competitor's ran, so
    the platform's fault costs it no try (``lease.max_attempts``)."""
    run, attempt = _running_attempt(session, run_id, attempt_number, "withdrawing")
    run.attempt_records.remove(attempt)
    run.status = RunStatus.PENDING.value


def recover_interrupted(session: Session, tournament_id: int, me: DriverIdentity,
                        withdrawn: Callable[[RunAttempt], str | None]) -> list[tuple[int, int]]:
    """Runs left RUNNING by an earlier lease holder: their attempt was interrupted, or, where
    ``withdrawn`` gives a reason (a stopped driver whose own withdrawal the store did not take:
    ``withdrawal_notes``), withdrawn, costing no try; run them again. Only the lease holder calls
    this, so no live driver is executing them. Returns those attempts, (run id, attempt number)."""
    recovered = []
    for run in tournament_runs(session, tournament_id):
        if run.status != RunStatus.RUNNING:
            continue
        for attempt in run.attempt_records:
            if attempt.status != AttemptStatus.RUNNING:
                continue
            if (reason := withdrawn(attempt)) is not None:
                attempt.withdraw(reason)
            else:
                to_run_again(run, attempt, f"its driver ({attempt.driver_host} pid {attempt.driver_pid}) stopped before "
                                           f"it finished; taken over by {me.host} pid {me.pid}")
            recovered.append((run.id, attempt.number))
        run.status = RunStatus.PENDING.value
    return recovered


def withdraw_tournament_attempts(session: Session, tournament_id: int,
                                 reason_of: Callable[[RunAttempt], str | None]) -> list[tuple[int, int]]:
    """The tournament's attempts still running that ``reason_of`` gives a reason for: withdrawn with it
    (no try of the competitor's), their runs PENDING again. Returns them, (run id, attempt number)."""
    withdrawn = []
    for run in tournament_runs(session, tournament_id):
        if run.status != RunStatus.RUNNING:
            continue
        for attempt in run.attempt_records:
            if attempt.status == AttemptStatus.RUNNING and (reason := reason_of(attempt)) is not None:
                attempt.withdraw(reason)
                run.status = RunStatus.PENDING.value
                withdrawn.append((run.id, attempt.number))
    return withdrawn


def withdraw_own_attempts(session: Session, tournament_id: int, me: DriverIdentity, reason: str) -> list[tuple[int, int]]:
    """This driver's attempts still running when it was told to stop: withdrawn with ``reason``."""

    def own(attempt: RunAttempt) -> str | None:
        return reason if (attempt.driver_host, attempt.driver_pid) == (me.host, me.pid) else None

    return withdraw_tournament_attempts(session, tournament_id, own)
