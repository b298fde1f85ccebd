"""A job's copies of its file's rows (``jobs.copies``) go when it ends however it ends: not only when
its own try returns, but when another worker ends it after its worker died on the last try, and when a
job queued again is cancelled before its next try (at a claim; the API's cancel is in tests/api)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

from job_support import FakeExecutor, customer, fast_settings, queued_job, uploaded, wait_for
from sqlalchemy import update

from trainarena.jobs import JobWorker
from trainarena.jobs.copies import job_copies
from trainarena.settings import Settings
from trainarena.store import Store, open_store
from trainarena.store.models import Job, JobStatus

WORKER = Path(__file__).with_name("worker_process.py")


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
    doomed = subprocess.Popen([sys.executable, str(WORKER), str(tmp_path / "data")], stdout=subprocess.PIPE, text=True)
    try:
        assert doomed.stdout is not None
        assert doomed.stdout.readline().strip() == f"running {job_id}"  # its task is prepared: the splits are on disk
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.communicate()
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
