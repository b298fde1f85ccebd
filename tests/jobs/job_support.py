"""What the jobs tests share: fast settings, a customer's uploaded file and job in a store, and fake
executors (a job's life cycle without training)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from trainarena.api import create_app
from trainarena.contract import Direction, RunStatus
from trainarena.execution.supervise import current_stop_event
from trainarena.jobs import JobRequest, JobWorker, create_job
from trainarena.jobs.files import store_upload
from trainarena.jobs.queue import requeue
from trainarena.jobs.uploads import UploadSink, check_file
from trainarena.runs import CompetitorInfo, DiskFull, RunReport
from trainarena.settings import JobRules, Settings
from trainarena.store import Store, open_store
from trainarena.store.api_keys import create_key
from trainarena.store.models import ApiRole, AttemptStatus, Job, JobStatus, Run
from trainarena.tasks.base import Evaluation, TaskDefinition

INSTRUCT_MAPPING = {"field_instruction": "q", "field_output": "a"}


def fast_settings(data_dir: Path, database_url: str | None = None, **jobs: object) -> Settings:
    """Settings whose worker polls, beats and reports progress within a fraction of a second; a local
    model folder is the one allowed base model (never loaded by a fake executor). The store is at
    ``database_url``, else where the environment says (TRAINARENA_DATABASE_URL), else in ``data_dir``."""
    model = data_dir.parent / "model"
    model.mkdir(parents=True, exist_ok=True)
    (model / "config.json").write_text("{}")
    rules = {"base_models": (str(model),), "poll_seconds": 0.05, "heartbeat_seconds": 0.1, "stale_seconds": 30.0,
             "progress_seconds": 0.05, **jobs}  # fmt: skip
    store = {"database_url": database_url} if database_url else {}
    return Settings(data_dir=data_dir, jobs=JobRules(**rules), **store)


def qa_rows(n: int = 30) -> list[dict]:
    return [{"q": f"What is {i} plus {i}?", "a": str(2 * i)} for i in range(n)]


def customer(store: Store, name: str = "acme") -> int:
    with store.transaction() as session:
        return create_key(session, name, ApiRole.CUSTOMER).row.id


def uploaded(settings: Settings, store: Store, owner: int, rows: list[dict] | None = None) -> str:
    """A checked JSONL file of ``owner`` in the store; its id."""
    sink = UploadSink(settings.uploads_dir, settings.api.upload_max_bytes, "qa.jsonl")
    sink.write("".join(json.dumps(row) + "\n" for row in rows or qa_rows()).encode())
    sha = sink.finish()
    checked = check_file(sink.path, "qa.jsonl", "text", "jsonl", settings)
    with store.transaction() as session:
        return store_upload(session, settings, owner_key_id=owner, staging=sink.path, filename="qa.jsonl", checked=checked,
                            sha256=sha, size=sink.size).id  # fmt: skip


def queued_job(settings: Settings, store: Store, owner: int, file_id: str, **fields: object) -> str:
    request = JobRequest(**{"task_type": "instruct", "base_model": settings.jobs.base_models[0], "file_id": file_id,
                            "field_mapping": INSTRUCT_MAPPING, **fields})  # fmt: skip
    with store.transaction() as session:
        return create_job(session, settings, request, owner).id


class FakeExecutor:
    """Trains nothing: writes two log lines and an artifact, waits for ``release`` when given (a job
    that stays running) or for its run to be stopped (as a sandbox is killed), and reports success with a
    score of 1.25 (lower is better); scores the base model ``base_score``. Records every call."""

    def __init__(self, release: threading.Event | None = None, status: RunStatus = RunStatus.SUCCEEDED,
                 stoppable: bool = True, base_score: float = 1.5) -> None:
        self.release = release
        self.stoppable = stoppable  # False: a run that outlives its stop (slow to die) until released
        self.status = status
        self.base_score = base_score
        self.calls: list[tuple[CompetitorInfo, TaskDefinition, Path]] = []
        self.base_calls: list[TaskDefinition] = []
        self.started = threading.Event()

    def run_task(self, competitor: CompetitorInfo, task: TaskDefinition, run_dir: Path, run_name: str) -> RunReport:
        self.calls.append((competitor, task, run_dir))
        logs, output = run_dir / "logs", run_dir / "output"
        logs.mkdir(parents=True)
        output.mkdir()
        (logs / "stdout.log").write_text("step 1 loss 2.00\nstep 2 loss 1.50\n")
        (output / "adapter_config.json").write_text('{"peft_type": "LORA"}')
        (output / "adapter_model.safetensors").write_bytes(b"weights of " + run_name.encode())
        self.started.set()
        if self.release is not None:
            stop, deadline = current_stop_event(), time.monotonic() + 30
            while not self.release.wait(0.05) and not (self.stoppable and stop.is_set()) and time.monotonic() < deadline:
                pass
        if self.status != RunStatus.SUCCEEDED:
            return RunReport(self.status, time.time(), time.time(), log_path=logs, failure_reason="exited with code 1")
        return RunReport(RunStatus.SUCCEEDED, time.time(), time.time(), log_path=logs, artifact_path=output,
                         artifact_digest="ab" * 32, evaluation=Evaluation(1.25, Direction.LOWER))  # fmt: skip

    def evaluate_base_model(self, task: TaskDefinition) -> RunReport:
        self.base_calls.append(task)
        return RunReport(RunStatus.SUCCEEDED, time.time(), time.time(), evaluation=Evaluation(self.base_score, Direction.LOWER))


FULL = "the data directory's disk is full: /data has 3.0 MB free (a run failed writing its output there); free space and run again"


class FullDiskExecutor(FakeExecutor):
    """Its first ``faults`` runs fail on a full disk, as the pipeline reports one (``DiskFull``); later
    ones train as ``FakeExecutor`` does. Records when each call came: ``times`` (monotonic) and
    ``starts`` (the job's id and the wall clock's UTC time, to compare with a job's ``not_before``)."""

    def __init__(self, faults: int, release: threading.Event | None = None) -> None:
        super().__init__(release=release)
        self.faults = faults
        self.times: list[float] = []
        self.starts: list[tuple[str, datetime]] = []

    def run_task(self, competitor: CompetitorInfo, task: TaskDefinition, run_dir: Path, run_name: str) -> RunReport:
        self.times.append(time.monotonic())
        self.starts.append((task.name, datetime.now(UTC)))
        if len(self.times) <= self.faults:
            (run_dir / "output").mkdir(parents=True)  # what the script saved before the disk filled
            raise DiskFull(f"run {run_name} not counted: {FULL}")
        return super().run_task(competitor, task, run_dir, run_name)


def worker_killed_mid_job(data_dir: Path, job_id: str) -> None:
    """A worker process (``worker_process.py``) that claims ``job_id``, prepares its task and is killed
    outright while its run hangs: its job stays RUNNING under the dead worker ``doomed``."""
    doomed = subprocess.Popen([sys.executable, str(Path(__file__).with_name("worker_process.py")), str(data_dir)],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert doomed.stdout is not None
        assert doomed.stdout.readline().strip() == f"running {job_id}"  # its task is prepared: the splits are on disk
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.communicate()


def wait_for(condition, timeout: float = 20.0, what: str = "the condition") -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def try_running(store: Store, job_id: str, number: int) -> bool:
    """Whether the job's try ``number`` is its run's last attempt, and running."""
    with store.session() as session:
        job = session.get_one(Job, job_id)
        attempts = [] if job.run_id is None else session.get_one(Run, job.run_id).attempt_records
        return len(attempts) == number and attempts[-1].status == AttemptStatus.RUNNING


def lose_running_try(settings: Settings, store: Store, job_id: str, number: int = 1) -> None:
    """Once the job's try ``number`` runs, take the job from its worker as another worker's
    ``requeue_stale`` does when that worker stopped beating (it died): the try counts."""
    wait_for(lambda: try_running(store, job_id, number), what=f"try {number}")
    with store.transaction() as session:
        assert requeue(session, job_id, None, "its worker stopped beating (simulated)", settings.jobs.max_attempts)


def finished_job(settings: Settings, executor: FakeExecutor, **fields: object) -> tuple[dict, dict]:
    """The instruct job of ``fields`` (GET /v1/jobs/{id}) and its model (GET /v1/models/{id}) once
    ``executor`` trained it through a job worker."""
    with open_store(settings) as store:
        with store.transaction() as session:
            key = create_key(session, "acme", ApiRole.CUSTOMER)
        job_id = queued_job(settings, store, key.row.id, uploaded(settings, store, key.row.id), task_type="instruct", **fields)
        worker = JobWorker(settings, store=store, executor=executor)
        worker.start()
        try:
            wait_for(lambda: _status(store, job_id) in JobStatus.FINISHED, what="the job's end")
        finally:
            worker.stop()
        with TestClient(create_app(settings, store=store)) as client:
            headers = {"Authorization": f"Bearer {key.secret}"}
            job = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
            return job, client.get(f"/v1/models/{job['model_id']}", headers=headers).json()


def _status(store: Store, job_id: str) -> str:
    with store.session() as session:
        return session.get_one(Job, job_id).status
