"""Runs outside tournaments: ``trainarena run``'s own runs and the references it compares with.

An ad-hoc run is a ``run`` row whose task row belongs to no match (see migration 0003). It is created
running, with its one attempt, before the script starts (so ``runs list`` shows it while it trains);
the caller stores the report on that attempt as a tournament's driver does.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from trainarena.contract import RunStatus
from trainarena.store.leases import is_dead_local_process
from trainarena.store.models import AttemptStatus, Competitor, Run, RunAttempt, RunOrigin, TaskRow

# How a run ends without a score.
_ENDED_UNSCORED = (RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.INVALID)

# The runs a process stores itself (``trainarena run``, its references, ``trainarena audit``): none
# other ends them if that process dies. A job's run is ended by the job queue (its worker's heartbeat
# goes stale), a tournament's by the tournament's next driver.
_SELF_DRIVEN = (RunOrigin.ADHOC, RunOrigin.HOUSE, RunOrigin.BASE_MODEL, RunOrigin.AUDIT)

__all__ = ["WorkingTree", "cached_reference", "end_runs_of_dead_drivers", "failed_reference", "runs_of_tasks",
           "start_adhoc_run", "withdraw_adhoc_run"]


@dataclass(frozen=True)
class WorkingTree:
    """An unregistered script's source: where it was, its HEAD commit and state, what the sandbox ran."""

    path: str
    commit: str | None  # None: not a git repository (or one without a commit yet)
    dirty: bool | None  # uncommitted changes; None when not a git repository
    snapshot_path: str


def start_adhoc_run(
    session: Session,
    *,
    origin: str,
    definition: dict[str, Any],
    digest: str,
    competitor: Competitor | None = None,
    source: WorkingTree | None = None,
    audit_of: int | None = None,
) -> Run:
    """A running run of ``origin`` (adhoc, house, base_model, job, or audit of run ``audit_of``) on its
    own task row, with attempt 1 started now by this process. Flushed, so its id is known."""
    if origin == RunOrigin.TOURNAMENT:
        raise ValueError("a tournament's runs are created with its rounds, not as ad-hoc runs")
    if (origin == RunOrigin.AUDIT) != (audit_of is not None):
        raise ValueError("an audit's run names the run it audits (audit_of), and only an audit's run does")
    run = Run(origin=origin, competitor=competitor, status=RunStatus.RUNNING.value, audit_of_id=audit_of)
    if source is not None:
        run.source_path, run.source_commit = source.path, source.commit
        run.source_dirty, run.snapshot_path = source.dirty, source.snapshot_path
    run.task = TaskRow(index=0, definition=definition, digest=digest)
    run.attempt_records.append(
        RunAttempt(number=1, status=AttemptStatus.RUNNING, driver_host=socket.gethostname(), driver_pid=os.getpid())
    )
    session.add(run)
    session.flush()
    return run


def withdraw_adhoc_run(session: Session, run_id: int) -> None:
    """An ad-hoc run (of ``start_adhoc_run``) that the platform could not start or count (a full disk,
    inputs not laid out, no node that can hold it): removed with its own task row, as if never started,
    so no failed run is held against its script. Nothing tries such a run again: its caller says why."""
    run = session.get_one(Run, run_id)
    if run.task.match_row_id is not None:
        raise ValueError(f"run {run_id} is a tournament's: its attempt is withdrawn, not the run (attempts.withdraw_attempt)")
    session.delete(run.task)  # the run and its attempt go with it (cascade)


def end_runs_of_dead_drivers(session: Session) -> list[int]:
    """Runs left running by a process of this host that no longer exists (killed, e.g. ``kill -9``,
    so no handler ran): their attempt is recorded as interrupted and the run as failed, with why.
    Only runs whose driver is gone: a live process's run (or one of another host) is left as it is.
    Returns the ids of the runs ended."""
    host = socket.gethostname()
    query = (
        select(Run)
        .join(Run.attempt_records)
        .options(selectinload(Run.attempt_records))
        .where(Run.origin.in_(_SELF_DRIVEN), Run.status == RunStatus.RUNNING.value,
               RunAttempt.status == AttemptStatus.RUNNING, RunAttempt.driver_host == host)
    )  # fmt: skip
    ended = []
    for run in session.scalars(query).unique():
        for attempt in run.attempt_records:
            if (attempt.status == AttemptStatus.RUNNING and attempt.driver_pid is not None
                    and is_dead_local_process(host, attempt.driver_pid, host)):  # fmt: skip
                reason = f"its process ({host}:{attempt.driver_pid}) ended without storing a result"
                attempt.interrupt(reason)
                run.status, run.abandoned_reason = RunStatus.FAILED.value, reason
                ended.append(run.id)
    return ended


def cached_reference(session: Session, digest: str, origin: str, seed: int | None = None) -> Run | None:
    """The first succeeded reference run of ``origin`` on the task with ``digest``, if any; with
    ``seed``, the first one run on that seed (the digest leaves the seed out, the definition keeps it).
    The first, so that a run's reference never changes once there: a later one (two computed at once)
    does not displace it."""
    return next(_references(session, digest, origin, (RunStatus.SUCCEEDED,), seed), None)


def failed_reference(session: Session, digest: str, origin: str, seed: int | None = None) -> Run | None:
    """The latest reference run of ``origin`` on the task with ``digest`` (on ``seed``, when given)
    that ended without a score (failed, timed out, invalid): why a task has no such reference."""
    return next(_references(session, digest, origin, _ENDED_UNSCORED, seed, newest_first=True), None)


def _references(session: Session, digest: str, origin: str, statuses: tuple[RunStatus, ...], seed: int | None,
                *, newest_first: bool = False) -> Iterator[Run]:  # fmt: skip
    if origin not in RunOrigin.REFERENCES:
        raise ValueError(f"{origin!r} is not a reference origin; use one of {', '.join(RunOrigin.REFERENCES)}")
    query = (
        select(Run)
        .join(Run.task)
        .where(TaskRow.digest == digest, Run.origin == origin, Run.status.in_([status.value for status in statuses]))
        .order_by(Run.id.desc() if newest_first else Run.id)
    )
    if seed is None:
        return iter(session.scalars(query.limit(1)))
    return (run for run in session.scalars(query) if run.task.definition.get("seed") == seed)


def runs_of_tasks(session: Session, digests: list[str]) -> list[Run]:
    """Every run, of any origin, on tasks with one of ``digests``, oldest first, attempts loaded."""
    return list(
        session.scalars(
            select(Run)
            .options(selectinload(Run.attempt_records).selectinload(RunAttempt.evaluation), selectinload(Run.competitor))
            .join(Run.task)
            .where(TaskRow.digest.in_(digests))
            .order_by(Run.id)
        )
    )
