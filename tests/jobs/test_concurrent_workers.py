"""Several job workers, each its own process (as several `trainarena api` processes on one database
would run them), started at the same moment on one store: each job runs once, the workers share the
queue and run jobs at the same time."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from job_support import customer, fast_settings, queued_job, uploaded, wait_for
from sqlalchemy import select

from trainarena.store import Store, open_store
from trainarena.store.models import Job, JobStatus

WORKER = Path(__file__).with_name("concurrent_worker_process.py")
WORKERS = 3
JOBS = 9


def _statuses(store: Store, jobs: list[str]) -> list[str]:
    with store.session() as session:
        return list(session.scalars(select(Job.status).where(Job.id.in_(jobs))))


def test_worker_processes_on_one_store_share_the_queue_and_run_each_job_once(url_on_each_backend: str, tmp_path: Path) -> None:
    settings = fast_settings(tmp_path / "data", url_on_each_backend)
    store = open_store(settings)
    with store:
        owner = customer(store)
        file_id = uploaded(settings, store, owner)
        jobs = [queued_job(settings, store, owner, file_id, seed=i) for i in range(JOBS)]
        log, gate = tmp_path / "executions", tmp_path / "gate"
        argv = [sys.executable, str(WORKER), str(tmp_path / "data"), url_on_each_backend, str(log), str(gate)]
        procs = [subprocess.Popen(argv, stderr=subprocess.PIPE, text=True) for _ in range(WORKERS)]
        try:
            gate.touch()
            wait_for(lambda: all(status in JobStatus.FINISHED for status in _statuses(store, jobs)), timeout=120,
                     what="every job to finish")  # fmt: skip
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            errors = [proc.communicate(timeout=60)[1] for proc in procs]
        assert [proc.returncode for proc in procs] == [0] * WORKERS, errors
        assert not any("Traceback" in error for error in errors), errors
        assert set(_statuses(store, jobs)) == {JobStatus.SUCCEEDED}
    lines = [line.split() for line in log.read_text().splitlines()]
    starts = Counter(job for what, job, _pid, _at in lines if what == "start")
    assert len(starts) == JOBS and set(starts.values()) == {1}, f"each job runs once: {starts}"
    workers = {pid for what, _job, pid, _at in lines if what == "start"}
    assert len(workers) >= 2, "the workers shared the queue"
    assert _most_at_once(lines) >= 2, "jobs ran at the same time in different workers"


def _most_at_once(lines: list[list[str]]) -> int:
    events = sorted((float(at), 1 if what == "start" else -1) for what, _job, _pid, at in lines)
    running = most = 0
    for _at, change in events:
        running += change
        most = max(most, running)
    return most
