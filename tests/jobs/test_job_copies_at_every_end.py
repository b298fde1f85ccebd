"""A job's copies of its file's rows (``jobs.copies``) go when it ends however it ends: not only when
its own try returns, but when another worker ends it after its worker died on the last try, and when a
job queued again is cancelled before its next try (at a claim; the API's cancel is in tests/api)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from job_support import FakeExecutor, customer, fast_settings, queued_job, uploaded, wait_for, worker_killed_mid_job
from sqlalchemy import update

from trainarena.jobs import JobWorker
from trainarena.jobs.copies import job_copies
from trainarena.settings import Settings
from trainarena.store import Store, open_store
from trainarena.store.models import Job, JobStatus


def copies_left(settings: Settings, store: Store, job_id: str) -> list[Path]:
    with store.session() as session:
        return [path for path in job_copies(session, settings, session.get_one(Job, job_id)) if path.is_dir()]


def status_of(store: Store, job_id: str) -> str:
    with store.session() as session:
        return session.get_one(Job, job_id).status


def test_a_job_failed_by_another_worker_after_its_last_try_leaves_no_copies(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path / "data", stale_seconds=0.5, max_attempts=1)
    with open_store(settings) as store:
        owner = customer(store)
        job_id = queued_job(settings, store, owner, uploaded(settings, store, owner))
    worker_killed_mid_job(tmp_path / "data", job_id)
    with open_store(settings) as store:
        assert len(copies_left(settings, store, job_id)) == 2  # the train and the held-out split
        survivor = JobWorker(settings, store=store, executor=FakeExecutor(), worker_id="survivor")
        survivor.start()
        try:
            wait_for(lambda: status_of(store, job_id) == JobStatus.FAILED, what="the survivor to fail the job")
            wait_for(lambda: copies_left(settings, store, job_id) == [], timeout=5, what="the failed job's copies to go")
        finally:
            survivor.stop()


def test_a_job_queued_again_and_cancelled_before_its_next_claim_leaves_no_copies(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path / "data")
    with open_store(settings) as store:
        owner = customer(store)
        job_id = queued_job(settings, store, owner, uploaded(settings, store, owner))
        first = JobWorker(settings, store=store, executor=FakeExecutor(release=threading.Event()), worker_id="first")
        first.start()
        wait_for(lambda: status_of(store, job_id) == JobStatus.RUNNING and copies_left(settings, store, job_id) != [])
        first.stop()  # queued again: its copies stay for the next try
        assert status_of(store, job_id) == JobStatus.QUEUED and copies_left(settings, store, job_id) != []
        with store.transaction() as session:  # the cancel that raced the requeue: the flag on a queued job
            session.execute(update(Job).where(Job.id == job_id).values(cancel_requested=True))
        executor = FakeExecutor()
        second = JobWorker(settings, store=store, executor=executor, worker_id="second")
        second.start()
        try:
            wait_for(lambda: status_of(store, job_id) == JobStatus.CANCELLED, what="the claim to end the job cancelled")
            wait_for(lambda: copies_left(settings, store, job_id) == [], timeout=5, what="the cancelled job's copies to go")
        finally:
            second.stop()
        assert executor.calls == []


def test_copies_an_ended_jobs_removal_missed_go_when_a_worker_starts_and_a_running_jobs_stay(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    settings = fast_settings(tmp_path / "data")
    with open_store(settings) as store:
        owner = customer(store)
        file_id = uploaded(settings, store, owner)
        ended = queued_job(settings, store, owner, file_id)
        with monkeypatch.context() as patch:  # the process died between the end's commit and the removal
            patch.setattr("trainarena.jobs.runner.remove_ended_copies", lambda *args: None)
            cut_short = JobWorker(settings, store=store, executor=FakeExecutor(), worker_id="cut-short")
            cut_short.start()
            try:
                wait_for(lambda: status_of(store, ended) == JobStatus.SUCCEEDED, what="the job to succeed")
            finally:
                cut_short.stop()
        assert len(copies_left(settings, store, ended)) == 2  # the train and the held-out split
        running = queued_job(settings, store, owner, file_id)
        holder = JobWorker(settings, store=store, executor=FakeExecutor(release=threading.Event()), worker_id="holder")
        holder.start()
        try:
            def prepared() -> bool:  # its splits moved from their staging folders to where they stay
                copies = copies_left(settings, store, running)
                return copies != [] and not any(copy.name.startswith(".staging-") for copy in copies)

            wait_for(lambda: status_of(store, running) == JobStatus.RUNNING and prepared())
            held = copies_left(settings, store, running)
            sweeper = JobWorker(settings, store=store, executor=FakeExecutor(), worker_id="sweeper")
            sweeper.start()
            try:
                wait_for(lambda: copies_left(settings, store, ended) == [], timeout=5, what="the ended job's copies to go")
                assert copies_left(settings, store, running) == held
            finally:
                sweeper.stop()
        finally:
            holder.stop()
