"""A run whose own process was killed (kill -9: no handler ran) is ended when the store is next opened;
the runs of live processes, of other hosts, and those other processes end (jobs) are left running."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from trainarena.contract import RunStatus
from trainarena.settings import Settings
from trainarena.store import open_store
from trainarena.store.adhoc import start_adhoc_run
from trainarena.store.models import AttemptStatus, Run, RunOrigin


def _ended_process() -> int:
    """The pid of a process of this host that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _run_driven_by(session, origin: str, host: str, pid: int) -> int:  # type: ignore[no-untyped-def]
    audit_of = start_adhoc_run(session, origin=RunOrigin.ADHOC, definition={}, digest="a" * 24).id \
        if origin == RunOrigin.AUDIT else None  # fmt: skip
    run = start_adhoc_run(session, origin=origin, definition={}, digest="b" * 24, audit_of=audit_of)
    run.attempt_records[0].driver_host, run.attempt_records[0].driver_pid = host, pid
    return run.id


def test_opening_the_store_ends_the_runs_of_dead_local_processes_only(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    here, dead = socket.gethostname(), _ended_process()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with open_store(settings) as store, store.transaction() as session:
            killed = {origin: _run_driven_by(session, origin, here, dead)
                      for origin in (RunOrigin.ADHOC, RunOrigin.HOUSE, RunOrigin.BASE_MODEL, RunOrigin.AUDIT)}
            alive = [_run_driven_by(session, RunOrigin.ADHOC, here, live.pid),
                     start_adhoc_run(session, origin=RunOrigin.ADHOC, definition={}, digest="c" * 24).id,  # this process
                     _run_driven_by(session, RunOrigin.ADHOC, "another-host", dead),
                     _run_driven_by(session, RunOrigin.JOB, here, dead)]  # its worker's queue ends it  # fmt: skip
        with open_store(settings) as store, store.session() as session:
            for run_id in killed.values():
                run = session.get_one(Run, run_id)
                attempt = run.attempt_records[0]
                why = f"its process ({here}:{dead}) ended without storing a result"
                assert (run.status, run.failure_reason) == (RunStatus.FAILED, why)
                assert (attempt.status, attempt.failure_reason) == (AttemptStatus.INTERRUPTED, why)
                assert attempt.finished_at is not None
            for run_id in alive:
                run = session.get_one(Run, run_id)
                assert (run.status, run.attempt_records[0].status) == (RunStatus.RUNNING, AttemptStatus.RUNNING)
    finally:
        live.kill()
        live.wait()
