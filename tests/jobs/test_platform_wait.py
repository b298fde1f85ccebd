"""A job whose try the platform could not start waits in the store (``job.not_before``, migration 0016):
every worker's claim leaves it queued until then and takes the next job, a restarted service still
honours it, the claim that starts its next try clears it, and its length follows the job's own
platform faults in a row (doubling; a try withdrawn for the service's stop neither counts nor breaks
the row; a try that ran starts again from the first wait)."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from job_support import FakeExecutor, FullDiskExecutor, customer, fast_settings, queued_job, uploaded, wait_for
from sqlalchemy import update

from trainarena.contract import RunStatus
from trainarena.jobs import JobWorker
from trainarena.jobs.queue import claim_next, platform_faults, requeue, withdraw, withdraw_stopped
from trainarena.jobs.records import SERVICE_STOPPED
from trainarena.jobs.runner import JobRunner
from trainarena.settings import Settings
from trainarena.store import Store, open_store
from trainarena.store.models import AttemptStatus, Job, JobStatus, Run, database_now


def _job(store: Store, job_id: str) -> Job:
    with store.session() as session:
        job = session.get_one(Job, job_id)
        session.expunge(job)
        return job


def _queued_again(store: Store, job_id: str) -> bool:
    job = _job(store, job_id)
    return job.status == JobStatus.QUEUED and job.run_id is not None


def _finished(store: Store, *job_ids: str) -> bool:
    return all(_job(store, job_id).status in JobStatus.FINISHED for job_id in job_ids)


def _attempts(store: Store, job_id: str) -> list[str]:
    with store.session() as session:
        return [a.status for a in session.get_one(Run, session.get_one(Job, job_id).run_id).attempt_records]


def _withdrawn_once(settings: Settings, store: Store, job_id: str) -> Job:
    """A worker whose first run meets a full disk tries ``job_id``, and is stopped once the job is queued
    again to wait; the job as it is then."""
    worker = JobWorker(settings, store=store, executor=FullDiskExecutor(faults=1), worker_id="first")
    worker.start()
    try:
        wait_for(lambda: _queued_again(store, job_id), what="the try withdrawn")
    finally:
        worker.stop()
    return _job(store, job_id)


def test_two_workers_leave_a_waiting_job_to_its_time_and_take_the_next(tmp_path: Path, url_on_each_backend: str) -> None:
    settings = fast_settings(tmp_path / "data", url_on_each_backend, platform_retry_seconds=3.0, platform_retry_max_seconds=3.0)
    with open_store(settings) as store_a, open_store(settings) as store_b:
        owner = customer(store_a)
        file_id = uploaded(settings, store_a, owner)
        waiting, later = (queued_job(settings, store_a, owner, file_id, seed=seed) for seed in (1, 2))
        first_executor = FullDiskExecutor(faults=1)  # then trains
        first = JobWorker(settings, store=store_a, executor=first_executor, worker_id="first")  # one job at a time
        first.start()
        try:
            wait_for(lambda: _queued_again(store_a, waiting), what="the try withdrawn")
            waits_until = _job(store_a, waiting).not_before
            assert waits_until is not None
            second_executor = FullDiskExecutor(faults=0)
            second = JobWorker(settings, store=store_b, executor=second_executor, worker_id="second")
            second.start()
            try:
                wait_for(lambda: _finished(store_a, waiting, later), timeout=30, what="both jobs to finish")
            finally:
                second.stop()
        finally:
            first.stop()
    starts = first_executor.starts + second_executor.starts
    faulted_at, *tries = sorted(at for job, at in starts if job == waiting)
    assert faulted_at < waits_until
    # The next job was taken at once, by the worker that had not met the fault: the first paused as long.
    assert [job for job, _at in second_executor.starts][:1] == [later]
    assert later not in [job for job, _at in first_executor.starts]
    assert [at < waits_until for job, at in starts if job == later] == [True]
    # The waiting job was tried again by neither worker before its time, once, and trained.
    assert len(tries) == 1 and tries[0] >= waits_until
    with open_store(settings) as store:
        assert _attempts(store, waiting) == [AttemptStatus.WITHDRAWN, RunStatus.SUCCEEDED.value] and _job(store, waiting).not_before is None
        assert _job(store, later).status == JobStatus.SUCCEEDED


def test_a_restarted_service_keeps_the_wait(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path / "data", platform_retry_seconds=2.0, platform_retry_max_seconds=2.0)
    with open_store(settings) as store:
        owner = customer(store)
        job_id = queued_job(settings, store, owner, uploaded(settings, store, owner))
        waits_until = _withdrawn_once(settings, store, job_id).not_before
    assert waits_until is not None
    # Started again: a new connection to the store, a new worker, nothing kept in memory.
    with open_store(settings) as store:
        executor = FullDiskExecutor(faults=0)
        worker = JobWorker(settings, store=store, executor=executor, worker_id="restarted")
        worker.start()
        try:
            wait_for(lambda: _finished(store, job_id), what="the job to finish")
        finally:
            worker.stop()
        [(job, started_at)] = executor.starts
        assert job == job_id and started_at >= waits_until
        assert _job(store, job_id).status == JobStatus.SUCCEEDED


def test_a_worker_whose_only_job_waits_claims_once_a_poll_and_runs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trainarena.jobs import worker as worker_module

    settings = fast_settings(tmp_path / "data", platform_retry_seconds=60.0, platform_retry_max_seconds=60.0, poll_seconds=0.1)
    with open_store(settings) as store:
        owner = customer(store)
        job_id = queued_job(settings, store, owner, uploaded(settings, store, owner))
        _withdrawn_once(settings, store, job_id)
        claims: list[str | None] = []
        real_claim = worker_module.claim_next

        def counted_claim(session, worker_id, **kwargs):  # noqa: ANN001, ANN003, ANN202
            claims.append(real_claim(session, worker_id, **kwargs))
            return claims[-1]

        monkeypatch.setattr(worker_module, "claim_next", counted_claim)
        executor = FakeExecutor()
        worker = JobWorker(settings, store=store, executor=executor, worker_id="idle")
        worker.start()
        try:
            wait_for(lambda: len(claims) >= 3, what="a few polls")
            seconds, before = 1.0, len(claims)
            time.sleep(seconds)
            polled = len(claims) - before
        finally:
            worker.stop()
        assert executor.calls == [] and set(claims) == {None}
        assert 1 <= polled <= seconds / settings.jobs.poll_seconds + 2, polled  # one claim a poll, no busy loop
        assert _job(store, job_id).status == JobStatus.QUEUED


def test_the_wait_is_the_jobs_own_and_doubles_with_its_faults_in_a_row(tmp_path: Path, url_on_each_backend: str) -> None:
    settings = fast_settings(tmp_path / "data", url_on_each_backend, platform_retry_seconds=30.0, platform_retry_max_seconds=100.0,
                             max_platform_faults=10)  # fmt: skip
    rules = settings.jobs
    with open_store(settings) as store:
        owner = customer(store)
        file_id = uploaded(settings, store, owner)
        waiting, other = (queued_job(settings, store, owner, file_id, seed=seed) for seed in (1, 2))
        runner = JobRunner(settings, store, FakeExecutor())

        def claimed_and_started(worker: str) -> int:
            with store.transaction() as session:
                assert claim_next(session, worker) == waiting
            assert _job(store, waiting).not_before is None  # cleared as its try starts
            return runner._start(waiting, worker).number

        def platform_fault(worker: str) -> timedelta:
            """A try of ``waiting`` the platform could not start: how far off its not_before is then."""
            number = claimed_and_started(worker)
            with store.transaction() as session:
                withdrawn = withdraw(session, waiting, worker, number, "no space left", rules)
                now = database_now(session)
            assert withdrawn is not None and withdrawn.job_status == JobStatus.QUEUED
            waits_until = _job(store, waiting).not_before
            assert waits_until is not None and abs((waits_until - now).total_seconds() - withdrawn.seconds) < 1
            return timedelta(seconds=withdrawn.seconds)

        def due_now() -> None:  # as if its wait had passed
            with store.transaction() as session:
                session.execute(update(Job).where(Job.id == waiting).values(not_before=database_now(session) - timedelta(seconds=1)))

        def faults() -> tuple[int, int]:
            with store.session() as session:
                return platform_faults(session.get_one(Run, _job(store, waiting).run_id))

        assert platform_fault("w1") == timedelta(seconds=30)
        with store.transaction() as session:  # any worker, on any connection: the next job, not the waiting one
            assert claim_next(session, "w2") == other
        with store.transaction() as session:
            assert claim_next(session, "w3") is None
        due_now()
        assert platform_fault("w1") == timedelta(seconds=60)  # two in a row
        due_now()
        number = claimed_and_started("w1")  # its service stops during the next try: not a fault, no wait
        with store.transaction() as session:
            assert withdraw_stopped(session, waiting, "w1", number, SERVICE_STOPPED)
        assert _job(store, waiting).not_before is None and faults() == (2, 2)
        assert platform_fault("w1") == timedelta(seconds=100)  # the third in a row, up to the bound
        due_now()
        claimed_and_started("w1")  # a try that ran (lost with its node) ends the row
        with store.transaction() as session:
            assert requeue(session, waiting, "w1", "lost with its node", rules.max_attempts)
        assert platform_fault("w1") == timedelta(seconds=30) and faults() == (4, 1)
        assert _attempts(store, waiting) == [AttemptStatus.WITHDRAWN] * 4 + [AttemptStatus.INTERRUPTED, AttemptStatus.WITHDRAWN]
