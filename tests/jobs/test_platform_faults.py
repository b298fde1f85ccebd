"""A job whose run the platform could not start (``RunNotStarted``: its data directory's disk full, its
inputs not laid out, no cluster node that can hold it), with a fake executor: the try is withdrawn, not
counted, the job queued again with the reason and its wait in its view, the worker that met the fault
claiming nothing for that wait, and the job failed, saying whose fault, after
``jobs.max_platform_faults`` such tries. (The wait itself, across workers and restarts:
test_platform_wait.)"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from job_support import (
    FULL,
    FakeExecutor,
    FullDiskExecutor,
    customer,
    fast_settings,
    lose_running_try,
    queued_job,
    uploaded,
    wait_for,
)
from pydantic import ValidationError
from typer.testing import CliRunner

from trainarena.api import create_app
from trainarena.cli import app
from trainarena.contract import RunStatus
from trainarena.jobs import JobWorker
from trainarena.settings import JobRules, Settings
from trainarena.store import Store, open_store
from trainarena.store.api_keys import create_key
from trainarena.store.models import ApiRole, AttemptStatus, Job, JobStatus, Run


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return fast_settings(tmp_path / "data", platform_retry_seconds=0.4, platform_retry_max_seconds=0.4)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    with open_store(settings) as opened:
        yield opened


def _job(settings: Settings, store: Store) -> str:
    owner = customer(store)
    return queued_job(settings, store, owner, uploaded(settings, store, owner))


def _run_worker(settings: Settings, store: Store, executor: FakeExecutor, until) -> None:  # noqa: ANN001
    worker = JobWorker(settings, store=store, executor=executor)
    worker.start()
    try:
        wait_for(until, what="the job's end")
    finally:
        worker.stop()


def _status(store: Store, job_id: str) -> str:
    with store.session() as session:
        return session.get_one(Job, job_id).status


def _queued_again(store: Store, job_id: str) -> bool:
    """Queued after a try (its run recorded), not before its first."""
    with store.session() as session:
        job = session.get_one(Job, job_id)
        return job.status == JobStatus.QUEUED and job.run_id is not None


def _job_and_attempts(store: Store, job_id: str) -> tuple[Job, list[tuple[str, str | None]], list[str]]:
    """The job, its run's attempts (status, reason) and its events' messages but progress lines."""
    with store.session() as session:
        job = session.get_one(Job, job_id)
        attempts = [(a.status, a.failure_reason) for a in session.get_one(Run, job.run_id).attempt_records]
        events = [e.message for e in job.events if e.kind != "progress"]
        session.expunge(job)
        return job, attempts, events


def test_a_full_disk_withdraws_the_try_queues_the_job_again_and_the_worker_waits(settings: Settings, store: Store,
                                                                                  caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    job_id = _job(settings, store)
    executor = FullDiskExecutor(faults=1)
    with caplog.at_level(logging.WARNING, logger="trainarena.jobs.worker"):
        _run_worker(settings, store, executor, lambda: _status(store, job_id) in JobStatus.FINISHED)
    job, attempts, events = _job_and_attempts(store, job_id)
    assert job.status == JobStatus.SUCCEEDED and job.failure_reason is None
    # The withdrawn try stays recorded, not counted: the succeeded one is the run's result.
    assert attempts == [(AttemptStatus.WITHDRAWN, f"run {job_id}-try1 not counted: {FULL}"), (RunStatus.SUCCEEDED.value, None)]
    assert events[2] == f"queued again, not counted as a try: the platform could not start its run: run {job_id}-try1 not counted: {FULL}"
    assert [message.split(":")[0] for message in events] == ["queued", "started", "queued again, not counted as a try", "started", "finished"]
    # The worker claimed nothing for jobs.platform_retry_seconds, then tried the job again.
    assert executor.times[1] - executor.times[0] >= settings.jobs.platform_retry_seconds
    # One line says it (a beat racing the try's return may add its own "no longer its running job").
    said = [record.getMessage() for record in caplog.records if "the platform's fault" in record.getMessage()]
    assert len(said) == 1, said
    [line] = said
    assert f"job {job_id} not started, the platform's fault: run {job_id}-try1 not counted: {FULL}" in line
    assert line.endswith("claiming no job for 0.4 s; the job is queued again to wait as long, its try not counted")
    assert not (settings.work_dir / "jobs" / job_id / "attempt-1" / "output").exists()  # nothing of it is kept


def test_a_job_waiting_for_the_platform_says_why_and_until_when_in_the_api_and_the_cli(tmp_path: Path,
                                                                                       monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    settings = fast_settings(tmp_path / "data", platform_retry_seconds=60.0, platform_retry_max_seconds=60.0)
    with open_store(settings) as store:
        with store.transaction() as session:
            owner_key = create_key(session, "acme", ApiRole.CUSTOMER)
        job_id = queued_job(settings, store, owner_key.row.id, uploaded(settings, store, owner_key.row.id))
        # Its one try withdrawn, the job waits a minute before any worker claims it: stopped meanwhile.
        before = datetime.now(UTC)
        _run_worker(settings, store, FullDiskExecutor(faults=1), lambda: _queued_again(store, job_id))
        after = datetime.now(UTC)
        with store.session() as session:
            waits_until = session.get_one(Job, job_id).not_before
        assert waits_until is not None and before + timedelta(seconds=60) <= waits_until <= after + timedelta(seconds=60)
        said = {f"the platform could not start its last try: run {job_id}-try1 not counted: {FULL}; it is tried again after "
                f"{when} UTC, not counted as a try" for when in (f"{waits_until:%H:%M:%S}", f"{waits_until:%Y-%m-%d %H:%M:%S}")}  # fmt: skip
        with TestClient(create_app(settings, store=store)) as client:
            view = client.get(f"/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {owner_key.secret}"}).json()
        assert (view["status"], view["failure_reason"]) == ("queued", None) and view["waiting_reason"] in said
        assert datetime.fromisoformat(view["not_before"]) == waits_until
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(settings.data_dir))
    shown = CliRunner().invoke(app, ["jobs", "show", job_id, "--json"])
    assert shown.exit_code == 0, shown.output
    record = json.loads(shown.stdout)
    assert (record["status"], record["waiting_reason"], record["not_before"]) == ("queued", view["waiting_reason"], waits_until.isoformat())
    assert record["events"][-1]["message"].startswith("queued again, not counted as a try: the platform could not start its run")
    listed = json.loads(CliRunner().invoke(app, ["jobs", "list", "--json"]).stdout)
    assert [job["waiting_reason"] for job in listed["jobs"]] == [view["waiting_reason"]]
    words = " ".join(CliRunner().invoke(app, ["jobs", "show", job_id]).stdout.split())
    assert view["waiting_reason"] in words and f"not before {waits_until.isoformat()}" in words
    # The list's text says it too (it showed a bare "queued"), under the table, wrapped at 80 columns.
    listed_text = CliRunner().invoke(app, ["jobs", "list"], env={"COLUMNS": "80"}).stdout
    assert f"{job_id} waits: {view['waiting_reason']}" in " ".join(listed_text.split())
    assert max(len(line) for line in listed_text.splitlines()) <= 80, listed_text


def test_a_job_the_platform_keeps_failing_fails_saying_whose_fault(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path / "data", platform_retry_seconds=0.05, platform_retry_max_seconds=0.05, max_platform_faults=2)
    with open_store(settings) as store:
        job_id = _job(settings, store)
        executor = FullDiskExecutor(faults=10)
        _run_worker(settings, store, executor, lambda: _status(store, job_id) in JobStatus.FINISHED)
        job, attempts, events = _job_and_attempts(store, job_id)
        assert len(executor.times) == 2 and executor.calls == []
        reason = (f"the platform could not start its run 2 times (the last: run {job_id}-try2 not counted: {FULL}); "
                  "the platform's fault, not the job's; not tried again")  # fmt: skip
        assert (job.status, job.failure_reason) == (JobStatus.FAILED, reason)
        assert [status for status, _ in attempts] == [AttemptStatus.WITHDRAWN, AttemptStatus.WITHDRAWN]
        assert events[-1] == f"failed: {reason}"
        with store.session() as session:  # no ended job leaves its run pending
            run = session.get_one(Run, job.run_id)
            assert (run.status, run.failure_reason, run.tries) == (RunStatus.FAILED.value, reason, 0)


def test_withdrawn_tries_cost_the_job_none_of_its_max_attempts(tmp_path: Path) -> None:
    """A try lost with its worker counts; one the platform withdrew does not: with max_attempts 2, a job
    withdrawn once and then lost with its worker is queued again, not failed."""
    settings = fast_settings(tmp_path / "data", platform_retry_seconds=0.05, platform_retry_max_seconds=0.05, max_attempts=2)
    with open_store(settings) as store:
        job_id = _job(settings, store)
        executor = FullDiskExecutor(faults=1, release=threading.Event())
        _run_worker(settings, store, executor, lambda: lose_running_try(settings, store, job_id, 2) is None)
        job, attempts, _events = _job_and_attempts(store, job_id)
        assert job.status == JobStatus.QUEUED
        assert [status for status, _ in attempts] == [AttemptStatus.WITHDRAWN, AttemptStatus.INTERRUPTED]


def test_a_full_disk_while_the_jobs_data_is_prepared_is_the_platforms_fault(settings: Settings, store: Store,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from trainarena.jobs import runner

    def no_space(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(settings.data_dir / "cache"))

    monkeypatch.setattr(runner.JobPreparer, "prepare", no_space)
    job_id = _job(settings, store)
    executor = FakeExecutor()
    _run_worker(settings, store, executor, lambda: _queued_again(store, job_id))
    job, [(status, reason)], _events = _job_and_attempts(store, job_id)
    assert (job.status, status, executor.calls) == (JobStatus.QUEUED, AttemptStatus.WITHDRAWN, [])
    assert reason.startswith(f"could not prepare the data of {job_id}'s attempt 1: {settings.data_dir / 'cache'}: No space left "
                             "on device; the data directory's disk is full: ")  # fmt: skip


def test_the_wait_after_platform_faults_doubles_up_to_its_bound() -> None:
    rules = JobRules(platform_retry_seconds=30, platform_retry_max_seconds=100)
    assert [rules.platform_retry_delay(n) for n in (1, 2, 3, 4, 1000)] == [30, 60, 100, 100, 100]
    with pytest.raises(ValidationError, match="platform_retry_max_seconds .10. must be at least jobs.platform_retry_seconds .30."):
        JobRules(platform_retry_seconds=30, platform_retry_max_seconds=10)


class NoArtifactExecutor(FakeExecutor):
    """Reports its run succeeded but leaves out the artifact's folder: an executor's bug, not the script's."""

    def run_task(self, competitor, task, run_dir: Path, run_name: str):  # noqa: ANN001, ANN201
        return dataclasses.replace(super().run_task(competitor, task, run_dir, run_name), artifact_path=None)


def test_a_succeeded_report_without_its_artifact_fails_the_job_in_words(settings: Settings, store: Store) -> None:
    job_id = _job(settings, store)
    _run_worker(settings, store, NoArtifactExecutor(), lambda: _status(store, job_id) in JobStatus.FINISHED)
    job, _attempts, _events = _job_and_attempts(store, job_id)
    assert job.status == JobStatus.FAILED and job.model_id is None
    assert job.failure_reason == ("could not record its end: RuntimeError: the executor reported the run succeeded but "
                                  "named no artifact folder; the platform lost what the script saved")
