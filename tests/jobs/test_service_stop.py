"""A job's try cut short because its service stops is the platform's doing, not the customer's: it is
withdrawn (recorded, not counted towards jobs.max_attempts, nor as a platform fault, no wait) and the
job queued again, saying why. So on the first stop signal (the worker stops its runs and records
them) and on a second one, which leaves at once: the tries are withdrawn before the process exits,
not left running for another worker to find stale and count as interrupted."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from job_support import FakeExecutor, customer, fast_settings, queued_job, try_running, uploaded, wait_for

from trainarena.cli.api import STOPPING, STOPPING_NOW
from trainarena.cli.demo import EXIT_STOPPED_AT_ONCE
from trainarena.contract import RunStatus
from trainarena.jobs import JobWorker, waiting_reason
from trainarena.jobs.records import SERVICE_STOPPED, SERVICE_STOPPED_AT_ONCE
from trainarena.settings import JobRules, Settings
from trainarena.store import Store, open_store
from trainarena.store.models import AttemptStatus, Job, JobStatus, Run

SERVING = Path(__file__).with_name("serving_process.py")


@contextmanager
def _working(settings: Settings, store: Store, executor: FakeExecutor, worker_id: str) -> Iterator[None]:
    """A job worker playing with ``executor`` during the block, stopped at its end as the API's shutdown stops it."""
    worker = JobWorker(settings, store=store, executor=executor, worker_id=worker_id)
    worker.start()
    try:
        yield
    finally:
        worker.stop()


def _ended(store: Store, job_id: str) -> bool:
    with store.session() as session:
        return session.get_one(Job, job_id).status in JobStatus.FINISHED


def _state(store: Store, job_id: str) -> tuple[Job, list[tuple[str, str | None]], int, str | None, list[str]]:
    """The job, its run's attempts (status, reason) and tries counted, its waiting reason and its events
    but progress lines."""
    with store.session() as session:
        job = session.get_one(Job, job_id)
        run = session.get_one(Run, job.run_id)
        attempts = [(a.status, a.failure_reason) for a in run.attempt_records]
        said = (waiting_reason(job, JobRules().stale_seconds), [e.message for e in job.events if e.kind != "progress"])
        session.expunge(job)
        return job, attempts, run.tries, *said


def test_tries_stopped_with_the_service_are_withdrawn_and_cost_the_job_nothing(tmp_path: Path) -> None:
    """With one try allowed and one platform fault, a job stopped with its service three times is still
    queued, waiting for no time, and then trains."""
    settings = fast_settings(tmp_path / "data", max_attempts=1, max_platform_faults=1)
    with open_store(settings) as store:
        owner = customer(store)
        job_id = queued_job(settings, store, owner, uploaded(settings, store, owner))
        for number in (1, 2, 3):
            with _working(settings, store, FakeExecutor(release=threading.Event()), f"w{number}"):
                wait_for(lambda number=number: try_running(store, job_id, number), what=f"try {number}")
            assert not (settings.work_dir / "jobs" / job_id / f"attempt-{number}" / "output").exists()  # nothing of it is kept
        job, attempts, tries, waiting, events = _state(store, job_id)
        assert (job.status, job.not_before, job.failure_reason, tries) == (JobStatus.QUEUED, None, None, 0)
        assert attempts == [(AttemptStatus.WITHDRAWN, SERVICE_STOPPED)] * 3
        assert waiting == f"{SERVICE_STOPPED} during its last try; it is tried again when a job worker runs, not counted as a try"
        assert events[-1] == f"queued again, not counted as a try: {SERVICE_STOPPED}"
        with _working(settings, store, FakeExecutor(), "last"):
            wait_for(lambda: _ended(store, job_id), what="the job's end")
        job, attempts, tries, _waiting, _events = _state(store, job_id)
        assert (job.status, tries) == (JobStatus.SUCCEEDED, 1)
        assert [status for status, _ in attempts] == [AttemptStatus.WITHDRAWN] * 3 + [RunStatus.SUCCEEDED.value]


def test_a_try_the_customers_script_fails_still_counts(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path / "data", max_attempts=3)
    with open_store(settings) as store:
        owner = customer(store)
        job_id = queued_job(settings, store, owner, uploaded(settings, store, owner))
        with _working(settings, store, FakeExecutor(status=RunStatus.FAILED), "w"):
            wait_for(lambda: _ended(store, job_id), what="the job's end")
        job, attempts, tries, waiting, _events = _state(store, job_id)
        assert (job.status, job.failure_reason, tries, waiting) == (JobStatus.FAILED, "exited with code 1", 1, None)
        assert attempts == [(RunStatus.FAILED.value, "exited with code 1")]


def _read_until(stream, wanted: str) -> list[str]:  # noqa: ANN001
    """Lines of ``stream`` up to the first holding ``wanted``."""
    lines = []
    while not lines or wanted not in lines[-1]:
        line = stream.readline()
        assert line, f"the stream ended before {wanted!r}: {lines}"
        lines.append(line)
    return lines


def test_a_second_stop_signal_withdraws_the_running_try_before_leaving_at_once(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path / "data")
    with open_store(settings) as store:
        owner = customer(store)
        job_id = queued_job(settings, store, owner, uploaded(settings, store, owner))
    # It inherits TRAINARENA_DATABASE_URL: under --store postgresql (scripts/test's PostgreSQL pass) it
    # serves the test's PostgreSQL database, as this test's store does (it finds the job or prints nothing).
    serving = subprocess.Popen([sys.executable, str(SERVING), str(settings.data_dir)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert serving.stdout is not None and serving.stderr is not None
        assert serving.stdout.readline().strip() == f"running {job_id}"
        serving.send_signal(signal.SIGTERM)  # stops the API, then its worker, which waits for the run
        _read_until(serving.stderr, STOPPING.format(signal="SIGTERM"))
        serving.send_signal(signal.SIGTERM)  # leaves at once
        _, stderr = serving.communicate(timeout=60)
    finally:
        if serving.poll() is None:
            serving.kill()
    assert serving.returncode == EXIT_STOPPED_AT_ONCE and STOPPING_NOW in stderr, stderr
    assert "Traceback" not in stderr, stderr
    with open_store(settings) as store:
        job, attempts, tries, waiting, events = _state(store, job_id)
    assert (job.status, job.worker_id, tries) == (JobStatus.QUEUED, None, 0)
    assert attempts == [(AttemptStatus.WITHDRAWN, SERVICE_STOPPED_AT_ONCE)]
    assert waiting == f"{SERVICE_STOPPED_AT_ONCE} during its last try; it is tried again when a job worker runs, not counted as a try"
    assert events[-1] == f"queued again, not counted as a try: {SERVICE_STOPPED_AT_ONCE}"

