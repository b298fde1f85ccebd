"""A job through the real sandbox (bubblewrap) with a script that never finishes on its own: its
printed lines arrive as progress events, and cancelling the job kills the run (nothing of it is left)
and ends the job cancelled."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from job_support import customer, fast_settings, queued_job, uploaded, wait_for
from sqlalchemy import select

from trainarena.jobs import JobWorker, cancel_job
from trainarena.settings import WorkbenchRules
from trainarena.store import open_store
from trainarena.store.models import Job, JobEvent, JobStatus, Run

ENDLESS = """
import itertools, time
for step in itertools.count(1):
    print(f"step {step} loss {3.0 / step:.3f}", flush=True)
    time.sleep(0.1)
"""


@pytest.mark.sandbox
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")
def test_cancelling_a_running_job_kills_its_sandboxed_run(tmp_path: Path, leftover_processes) -> None:  # noqa: ANN001
    script = tmp_path / "endless"
    script.mkdir()
    (script / "trainarena.toml").write_text('[trainarena]\ncontract = 1\nentrypoint = "train.py"\ntask_types = ["instruct"]\n')
    (script / "train.py").write_text(ENDLESS)
    settings = fast_settings(tmp_path / "data").model_copy(update={"workbench": WorkbenchRules(house_script=script)})
    with open_store(settings) as store:
        owner = customer(store)
        job_id = queued_job(settings, store, owner, uploaded(settings, store, owner))
        worker = JobWorker(settings, store=store)  # the configured backend: bubblewrap
        worker.start()
        try:
            def progress_lines() -> list[str]:
                with store.session() as session:
                    events = session.scalars(select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.kind == "progress"))
                    return [line for event in events for line in event.data["lines"]]

            wait_for(lambda: any(line.startswith("step 3 loss") for line in progress_lines()), timeout=60, what="progress")
            with store.transaction() as session:
                cancel_job(session, job_id, owner)
            wait_for(lambda: _job(store, job_id).status in JobStatus.FINISHED, timeout=30, what="the job to end")
        finally:
            worker.stop()
        job = _job(store, job_id)
        assert job.status == JobStatus.CANCELLED and job.model_id is None
        with store.session() as session:
            attempt = session.get_one(Run, job.run_id).attempt_records[-1]
            assert "stopped on request" in attempt.failure_reason
    assert leftover_processes(settings.work_dir / "jobs") == []


def _job(store, job_id: str) -> Job:  # noqa: ANN001
    with store.session() as session:
        return session.get_one(Job, job_id)
