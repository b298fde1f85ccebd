"""A job through the real sandbox (bubblewrap) with a script that never finishes on its own: its
printed lines arrive as progress events, and cancelling the job kills the run (nothing of it is left)
and ends the job cancelled; stopping the service kills it at once, without the sandbox's grace."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from job_support import customer, fast_settings, queued_job, uploaded, wait_for
from sqlalchemy import select

from trainarena.jobs import JobWorker, cancel_job
from trainarena.jobs.records import SERVICE_STOPPED
from trainarena.settings import SandboxRules, Settings, WorkbenchRules
from trainarena.store import Store, open_store
from trainarena.store.models import AttemptStatus, Job, JobEvent, JobStatus, Run

ENDLESS = """
import itertools, time
for step in itertools.count(1):
    print(f"step {step} loss {3.0 / step:.3f}", flush=True)
    time.sleep(0.1)
"""


# Ignores SIGTERM: only a SIGKILL ends it, at once or once the grace is spent.
STUBBORN = "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n" + ENDLESS
# Longer than any test waits: a run given the grace would hold the worker's stop this long.
LONG_GRACE_SECONDS = 120.0

pytestmark = [pytest.mark.sandbox, pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")]


def _settings_with_house_script(tmp_path: Path, source: str) -> Settings:
    """Settings whose house script (so every job's script) is ``source``, with a grace no test waits out
    (a script that ends on SIGTERM ends within it)."""
    script = tmp_path / "script"
    script.mkdir()
    (script / "trainarena.toml").write_text('[trainarena]\ncontract = 1\nentrypoint = "train.py"\ntask_types = ["instruct"]\n')
    (script / "train.py").write_text(source)
    return fast_settings(tmp_path / "data").model_copy(update={"workbench": WorkbenchRules(house_script=script),
                                                               "sandbox": SandboxRules(grace_seconds=LONG_GRACE_SECONDS)})


def _progress_lines(store: Store, job_id: str) -> list[str]:
    with store.session() as session:
        events = session.scalars(select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.kind == "progress"))
        return [line for event in events for line in event.data["lines"]]


@contextmanager
def _training(settings: Settings, store: Store, job_id: str) -> Iterator[JobWorker]:
    """A worker on the configured backend (bubblewrap), once the job's script reports its third step."""
    worker = JobWorker(settings, store=store)
    worker.start()
    try:
        wait_for(lambda: any(line.startswith("step 3 loss") for line in _progress_lines(store, job_id)), timeout=60, what="progress")
        yield worker
    finally:
        worker.stop()


def test_cancelling_a_running_job_kills_its_sandboxed_run(tmp_path: Path, leftover_processes) -> None:  # noqa: ANN001
    settings = _settings_with_house_script(tmp_path, ENDLESS)
    with open_store(settings) as store:
        owner = customer(store)
        job_id = queued_job(settings, store, owner, uploaded(settings, store, owner))
        with _training(settings, store, job_id):
            with store.transaction() as session:
                cancel_job(session, job_id, owner)
            wait_for(lambda: _job(store, job_id).status in JobStatus.FINISHED, timeout=30, what="the job to end")
        job = _job(store, job_id)
        assert job.status == JobStatus.CANCELLED and job.model_id is None
        with store.session() as session:
            attempt = session.get_one(Run, job.run_id).attempt_records[-1]
            assert "stopped on request" in attempt.failure_reason
    assert leftover_processes(settings.work_dir / "jobs") == []


def test_a_service_stop_kills_the_jobs_run_at_once_without_the_grace(tmp_path: Path, leftover_processes) -> None:  # noqa: ANN001
    """Its try is withdrawn and nothing of it kept, so the grace (SIGTERM, then SIGKILL after
    sandbox.grace_seconds) only held the service's stop up: a script ignoring SIGTERM held it for all of it."""
    settings = _settings_with_house_script(tmp_path, STUBBORN)
    with open_store(settings) as store:
        owner = customer(store)
        job_id = queued_job(settings, store, owner, uploaded(settings, store, owner))
        with _training(settings, store, job_id) as worker:
            stopping = time.monotonic()
            worker.stop()
            stopped_in = time.monotonic() - stopping
        assert stopped_in < LONG_GRACE_SECONDS / 4, stopped_in
        job = _job(store, job_id)
        assert (job.status, job.worker_id) == (JobStatus.QUEUED, None)
        with store.session() as session:
            attempt = session.get_one(Run, job.run_id).attempt_records[-1]
            assert (attempt.status, attempt.failure_reason) == (AttemptStatus.WITHDRAWN, SERVICE_STOPPED)
    assert leftover_processes(settings.work_dir / "jobs") == []


def _job(store, job_id: str) -> Job:  # noqa: ANN001
    with store.session() as session:
        return session.get_one(Job, job_id)
