"""The worker's side of the job queue in the store: claiming a queued job, beating for the running
ones, noticing cancellations, queueing again the jobs of a worker that stopped beating, and
withdrawing a try the platform could not start or its service's stop cut short.

Every transition is one conditional UPDATE (``WHERE status = ...``) whose row count says who won, so
two workers on one store (SQLite or PostgreSQL, in one process or several) never both run a job,
and a cancellation racing a claim has one outcome. Heartbeats and the staleness cutoff are read from
the store's clock (``database_now``: PostgreSQL's server clock, so workers on hosts whose clocks
disagree still agree on which worker stopped beating; a SQLite store's one host's clock), and so is
a queued job's ``not_before`` (after the platform could not start its try, no worker claims it
before then, whichever worker or process asks, before or after a restart); the times people read
(started, finished) are the worker's.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from trainarena.attempts import interrupt_running_attempts, withdraw_running_attempts
from trainarena.contract import RunStatus
from trainarena.jobs.records import SERVICE_STOPS, EventKind, add_event, close_run
from trainarena.settings import JobRules
from trainarena.store.models import AttemptStatus, Job, JobStatus, Run, RunAttempt, database_now, utcnow

# Queued jobs looked at per claim: a few, in case other workers take the first ones meanwhile.
_CLAIM_CANDIDATES = 8


def claim_next(session: Session, worker_id: str, skip: Collection[str] = (), ended: list[str] | None = None) -> str | None:
    """Make the oldest queued job this worker's running job; its id, or None when none is queued. A job
    waiting for its ``not_before`` (the store's time) is left queued and the next one claimed; the claim
    clears it. Jobs in ``skip`` are left to others: the worker's tries still going (one it lost to the
    queue may not have returned yet, and a new try must not share its place). A queued job whose
    cancellation was asked for (it raced the requeue of its try) is never claimed: it ends cancelled
    here, waiting or not, its id appended to ``ended`` (its copies are removed once that is committed,
    ``jobs.copies``)."""
    beat_at, now = database_now(session), utcnow()
    due = or_(Job.not_before.is_(None), Job.not_before <= beat_at)
    query = select(Job.id, Job.cancel_requested).where(Job.status == JobStatus.QUEUED, or_(due, Job.cancel_requested.is_(True)))
    if skip:
        query = query.where(Job.id.not_in(list(skip)))
    candidates = session.execute(query.order_by(Job.created_at, Job.id).limit(_CLAIM_CANDIDATES))
    for job_id, cancel_requested in list(candidates):
        if cancel_requested:
            if _end_cancelled_in_queue(session, job_id) and ended is not None:
                ended.append(job_id)
            continue
        claimed = session.execute(update(Job).where(Job.id == job_id, Job.status == JobStatus.QUEUED,
                                                    Job.cancel_requested.is_(False), due)
                                  .values(status=JobStatus.RUNNING, worker_id=worker_id, heartbeat_at=beat_at,
                                          started_at=now, not_before=None))  # fmt: skip
        if claimed.rowcount == 1:
            return job_id
    return None


def _end_cancelled_in_queue(session: Session, job_id: str) -> bool:
    ended = session.execute(update(Job).where(Job.id == job_id, Job.status == JobStatus.QUEUED)
                            .values(status=JobStatus.CANCELLED, finished_at=utcnow()))  # fmt: skip
    if ended.rowcount != 1:
        return False
    close_run(session, session.get_one(Job, job_id), "the job was cancelled before it was tried again")
    add_event(session, job_id, EventKind.CANCELLED, "cancelled before it was tried again")
    return True


def beat(session: Session, worker_id: str, job_ids: list[str]) -> set[str]:
    """Mark this worker's running jobs alive; the ids among ``job_ids`` still its own. One missing was
    queued again after missed heartbeats (and may run under another worker now) or ended meanwhile:
    its run must stop, and nothing of it be recorded."""
    if not job_ids:
        return set()
    mine = (Job.id.in_(job_ids), Job.worker_id == worker_id, Job.status == JobStatus.RUNNING)
    session.execute(update(Job).where(*mine).values(heartbeat_at=database_now(session)))
    return set(session.scalars(select(Job.id).where(*mine)))


def cancellations(session: Session, job_ids: list[str]) -> set[str]:
    """The ids among ``job_ids`` whose cancellation was asked for."""
    if not job_ids:
        return set()
    return set(session.scalars(select(Job.id).where(Job.id.in_(job_ids), Job.cancel_requested.is_(True))))


def _running_attempt(attempt: int) -> ColumnElement[bool]:
    """A condition on ``Job``: its run's attempt number ``attempt`` is the one running (not a try
    interrupted when the job was queued again, whose job may have been claimed again since)."""
    return Job.run_id.in_(select(RunAttempt.run_id).where(RunAttempt.number == attempt, RunAttempt.status == AttemptStatus.RUNNING))


def still_mine(session: Session, worker_id: str, job_id: str, attempt: int | None = None) -> bool:
    """Whether the job is still this worker's running job (not requeued after a missed heartbeat) and,
    with ``attempt``, that try's: a worker may claim again a job it lost, and the lost try's end must
    not touch the new one."""
    condition = [Job.id == job_id, Job.status == JobStatus.RUNNING, Job.worker_id == worker_id]
    if attempt is not None:
        condition.append(_running_attempt(attempt))
    return session.scalar(select(Job.id).where(*condition)) is not None


def set_script(session: Session, worker_id: str, job_id: str, competitor_id: int | None) -> bool:
    """Record whose script trains the try starting (``competitor_id``; None: the house script), if the
    job is still this worker's running job. One conditional UPDATE, which holds the job's row (SQLite's
    write lock) to the end of the transaction: the try's attempt, recorded in it, cannot land on a job
    a requeue or a withdrawal (the service leaving at once) took back meanwhile."""
    mine = (Job.id == job_id, Job.status == JobStatus.RUNNING, Job.worker_id == worker_id)
    return session.execute(update(Job).where(*mine).values(competitor_id=competitor_id)).rowcount == 1


def requeue(session: Session, job_id: str, worker_id: str | None, reason: str, max_attempts: int,
            stale_before: datetime | None = None, attempt: int | None = None) -> bool:  # fmt: skip
    """Queue a running job again (a new attempt next time), if it is still running under
    ``worker_id`` (any worker when None), with ``stale_before`` its heartbeat is older than that, and
    with ``attempt`` that try is its run's running attempt (``still_mine``).
    Its run's running attempt is marked interrupted. A job whose cancellation was asked for ends
    cancelled instead, and after ``max_attempts`` tries (withdrawn attempts cost none) the job fails
    instead; either way its run is closed (``close_run``). True when this call took the job from its worker."""
    job = _take_back(session, job_id, worker_id, stale_before, attempt)
    if job is None:
        return False
    run = None if job.run_id is None else session.get_one(Run, job.run_id)
    tries = 0 if run is None else run.tries
    if run is not None:
        interrupt_running_attempts(run, reason)
        run.status = RunStatus.PENDING.value  # until its next attempt
    given_up = None if tries < max_attempts else f"{reason}, on each of its {tries} tries; not tried again"
    _queue_or_end(session, job, reason, given_up, f"queued again: {reason}")
    return True


@dataclass(frozen=True)
class PlatformWait:
    """A job whose try the platform could not start, once the try was withdrawn: its status (queued
    again, failed after ``max_platform_faults``, or cancelled) and the wait its platform faults in a
    row call for (``JobRules.platform_retry_delay``; a queued job's ``not_before`` is that far off)."""

    job_status: str
    seconds: float


def _platform_fault(attempt: RunAttempt) -> bool:
    return attempt.status == AttemptStatus.WITHDRAWN and attempt.failure_reason not in SERVICE_STOPS


def platform_faults(run: Run) -> tuple[int, int]:
    """The run's tries the platform could not start (withdrawn, but not for its service's stop): in
    all, and in a row at its end. A try withdrawn for the service's stop neither counts nor ends the
    row; any other try (one that ran) ends it."""
    in_a_row = 0
    for attempt in reversed(run.attempt_records):
        if attempt.status != AttemptStatus.WITHDRAWN:
            break
        in_a_row += _platform_fault(attempt)
    return sum(map(_platform_fault, run.attempt_records)), in_a_row


def withdraw(session: Session, job_id: str, worker_id: str, attempt: int, reason: str, rules: JobRules) -> PlatformWait | None:
    """Queue again a running job whose try ``attempt`` the platform could not start (``RunNotStarted``:
    a full disk, inputs not laid out, no node that can hold it), if it is still this worker's and that
    try's. The attempt is recorded as withdrawn: nothing of the customer's ran, so it costs the job
    no try (``max_attempts``). The queued job waits: no worker claims it before its ``not_before``,
    ``platform_retry_seconds`` after its first such try in a row, doubled for each one more. After
    ``max_platform_faults`` such tries the job fails, saying it was the platform's fault; a job whose
    cancellation was asked for ends cancelled. None when it was no longer this worker's try (nothing
    done)."""
    job = _take_back(session, job_id, worker_id, None, attempt)
    if job is None:
        return None
    faults, in_a_row = platform_faults(_withdraw_try(session, job, reason))
    given_up = None
    if faults >= rules.max_platform_faults:
        given_up = (f"the platform could not start its run {faults} times (the last: {reason}); the platform's fault, "
                    "not the job's; not tried again")  # fmt: skip
    _queue_or_end(session, job, reason, given_up, f"queued again, not counted as a try: the platform could not start its run: {reason}")
    wait = rules.platform_retry_delay(in_a_row)
    if job.status == JobStatus.QUEUED:
        job.not_before = database_now(session) + timedelta(seconds=wait)
    return PlatformWait(job.status, wait)


def withdraw_stopped(session: Session, job_id: str, worker_id: str, attempt: int | None, reason: str) -> bool:
    """Queue again a running job whose try its service's stop cut short (``reason``: one of
    ``records.SERVICE_STOPS``), if it is still this worker's and, with ``attempt``, that try's
    (without: whatever try it has running, perhaps none recorded yet). The attempt is recorded as
    withdrawn: the platform's stop, not the customer's doing, costs the job no try (``max_attempts``)
    and, no sign of the platform's health, neither counts towards ``max_platform_faults`` nor makes
    the job wait. A job whose cancellation was asked for ends cancelled. True when this call took the
    job back."""
    job = _take_back(session, job_id, worker_id, None, attempt)
    if job is None:
        return False
    if job.run_id is not None:
        _withdraw_try(session, job, reason)
    _queue_or_end(session, job, reason, None, f"queued again, not counted as a try: {reason}")
    return True


def _withdraw_try(session: Session, job: Job, reason: str) -> Run:
    """The job's run, its running attempt recorded as withdrawn, and pending until its next one."""
    assert job.run_id is not None  # a started try has its run
    run = session.get_one(Run, job.run_id)
    withdraw_running_attempts(run, reason)
    run.status = RunStatus.PENDING.value
    return run


def running_under(session: Session, worker_id: str) -> list[str]:
    """The jobs the store has running under ``worker_id``."""
    return list(session.scalars(select(Job.id).where(Job.status == JobStatus.RUNNING, Job.worker_id == worker_id)))


def _take_back(session: Session, job_id: str, worker_id: str | None, stale_before: datetime | None,
               attempt: int | None) -> Job | None:  # fmt: skip
    """The job, queued again if it was running under ``worker_id`` (any worker when None), with a heartbeat
    older than ``stale_before`` and ``attempt`` as its running try, when given; None when it was not."""
    condition = [Job.id == job_id, Job.status == JobStatus.RUNNING]
    if worker_id is not None:
        condition.append(Job.worker_id == worker_id)
    if stale_before is not None:
        condition.append(Job.heartbeat_at < stale_before)
    if attempt is not None:
        condition.append(_running_attempt(attempt))
    done = session.execute(update(Job).where(*condition).values(status=JobStatus.QUEUED, worker_id=None, heartbeat_at=None))
    if done.rowcount != 1:
        return None
    job = session.get_one(Job, job_id)
    session.refresh(job)
    return job


def _queue_or_end(session: Session, job: Job, reason: str, given_up: str | None, queued: str) -> None:
    """A job taken back from its try: cancelled when that was asked for while it ran (nobody stopped it:
    its worker died, or its node did), failed with ``given_up`` when it is out of tries, else queued
    again with the event ``queued``."""
    if job.cancel_requested:
        job.status, job.finished_at = JobStatus.CANCELLED, utcnow()
        close_run(session, job, f"the job was cancelled; its try ended without a report ({reason})")
        add_event(session, job.id, EventKind.CANCELLED, f"cancelled (its try had ended: {reason})")
    elif given_up is not None:
        job.status, job.finished_at, job.failure_reason = JobStatus.FAILED, utcnow(), given_up
        close_run(session, job, given_up)
        add_event(session, job.id, EventKind.FAILED, f"failed: {given_up}")
    else:
        add_event(session, job.id, EventKind.QUEUED, queued)


def requeue_stale(session: Session, rules: JobRules, running_here: list[str] | None = None) -> list[str]:
    """Queue again every running job whose worker has not beaten for ``stale_seconds`` (it died), by
    the store's clock; but ``running_here``, the asking worker's own runs: it is alive, and beats
    for them next (a loop stalled past ``stale_seconds`` would otherwise throw away its own tries)."""
    stale_seconds = rules.stale_seconds
    cutoff = database_now(session) - timedelta(seconds=stale_seconds)
    condition = [Job.status == JobStatus.RUNNING, Job.heartbeat_at < cutoff]
    if running_here:
        condition.append(Job.id.not_in(running_here))
    stale = session.scalars(select(Job).where(*condition))
    requeued = []
    for job in list(stale):
        reason = f"its worker ({job.worker_id}) stopped beating for over {stale_seconds:g} s"
        if requeue(session, job.id, job.worker_id, reason, rules.max_attempts, stale_before=cutoff):
            requeued.append(job.id)
    return requeued
