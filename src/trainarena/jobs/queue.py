"""The worker's side of the job queue in the store: claiming a queued job, beating for the running
ones, noticing cancellations, and queueing again the jobs of a worker that stopped beating.

Every transition is one conditional UPDATE (``WHERE status = ...``) whose row count says who won, so
two workers on one store (SQLite or PostgreSQL, in one process or several) never both run a job,
and a cancellation racing a claim has one outcome.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from trainarena.jobs.records import EventKind, add_event
from trainarena.settings import JobRules
from trainarena.store.models import AttemptStatus, Job, JobStatus, Run, utcnow

# Queued jobs looked at per claim: a few, in case other workers take the first ones meanwhile.
_CLAIM_CANDIDATES = 8


def claim_next(session: Session, worker_id: str) -> str | None:
    """Make the oldest queued job this worker's running job; its id, or None when none is queued."""
    now = utcnow()
    candidates = session.scalars(select(Job.id).where(Job.status == JobStatus.QUEUED)
                                 .order_by(Job.created_at, Job.id).limit(_CLAIM_CANDIDATES))  # fmt: skip
    for job_id in list(candidates):
        claimed = session.execute(update(Job).where(Job.id == job_id, Job.status == JobStatus.QUEUED)
                                  .values(status=JobStatus.RUNNING, worker_id=worker_id, heartbeat_at=now,
                                          started_at=now))  # fmt: skip
        if claimed.rowcount == 1:
            return job_id
    return None


def beat(session: Session, worker_id: str, job_ids: list[str]) -> None:
    """Mark this worker's running jobs alive."""
    if job_ids:
        session.execute(update(Job).where(Job.id.in_(job_ids), Job.worker_id == worker_id, Job.status == JobStatus.RUNNING)
                        .values(heartbeat_at=utcnow()))  # fmt: skip


def cancellations(session: Session, job_ids: list[str]) -> set[str]:
    """The ids among ``job_ids`` whose cancellation was asked for."""
    if not job_ids:
        return set()
    return set(session.scalars(select(Job.id).where(Job.id.in_(job_ids), Job.cancel_requested.is_(True))))


def still_mine(session: Session, worker_id: str, job_id: str) -> bool:
    """Whether the job is still this worker's running job (not requeued after a missed heartbeat)."""
    job = session.get(Job, job_id)
    return job is not None and job.status == JobStatus.RUNNING and job.worker_id == worker_id


def requeue(session: Session, job_id: str, worker_id: str | None, reason: str, max_attempts: int,
            stale_before: datetime | None = None) -> bool:  # fmt: skip
    """Queue a running job again (a new attempt next time), if it is still running under
    ``worker_id`` (any worker when None) and, with ``stale_before``, its heartbeat is older than that.
    Its run's running attempt is marked interrupted. After ``max_attempts`` tries the job fails
    instead. True when this call took the job from its worker."""
    condition = [Job.id == job_id, Job.status == JobStatus.RUNNING]
    if worker_id is not None:
        condition.append(Job.worker_id == worker_id)
    if stale_before is not None:
        condition.append(Job.heartbeat_at < stale_before)
    done = session.execute(update(Job).where(*condition).values(status=JobStatus.QUEUED, worker_id=None, heartbeat_at=None))
    if done.rowcount != 1:
        return False
    job = session.get_one(Job, job_id)
    session.refresh(job)
    tries = 0
    if job.run_id is not None:
        run = session.get_one(Run, job.run_id)
        tries = run.attempts
        for attempt in run.attempt_records:
            if attempt.status == AttemptStatus.RUNNING:
                attempt.status, attempt.finished_at, attempt.failure_reason = AttemptStatus.INTERRUPTED, utcnow(), reason
    if tries >= max_attempts:
        job.status, job.finished_at = JobStatus.FAILED, utcnow()
        job.failure_reason = f"{reason}, on each of its {tries} tries; not tried again"
        add_event(session, job_id, EventKind.FAILED, f"failed: {job.failure_reason}")
    else:
        add_event(session, job_id, EventKind.QUEUED, f"queued again: {reason}")
    return True


def requeue_stale(session: Session, rules: JobRules) -> list[str]:
    """Queue again every running job whose worker has not beaten for ``stale_seconds`` (it died)."""
    stale_seconds = rules.stale_seconds
    cutoff = utcnow() - timedelta(seconds=stale_seconds)
    stale = session.scalars(select(Job).where(Job.status == JobStatus.RUNNING, Job.heartbeat_at < cutoff))
    requeued = []
    for job in list(stale):
        reason = f"its worker ({job.worker_id}) stopped beating for over {stale_seconds:g} s"
        if requeue(session, job.id, job.worker_id, reason, rules.max_attempts, stale_before=cutoff):
            requeued.append(job.id)
    return requeued
