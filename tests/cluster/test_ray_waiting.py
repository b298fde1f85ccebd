"""Runs whose Ray task waits for a node, on a real local cluster (conftest): a job cancelled while no
node can hold its task ends at once and the task never runs, even once a node that could joins; a
tournament whose runs no live node can hold stops after the placement timeout with an error naming
the ask and the nodes, and costs no competitor a try; a job in the same spot fails with that error.
(A run its node started is stopped through its stop file: ``test_ray_executor``.)"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import ray
from ray_fakes import MarksItsRuns, fake_task, fake_tournament, ran
from sqlalchemy import select

from trainarena.cluster import ray_executor
from trainarena.cluster.node import START_CLAIM, STOP_FILE
from trainarena.cluster.ray_executor import RayExecutor
from trainarena.cluster.resources import MB, PlacementTimeout
from trainarena.contract import RunStatus
from trainarena.execution.supervise import STOPPED_REASON
from trainarena.jobs import JobRequest, JobWorker, cancel_job, create_job
from trainarena.jobs.files import store_upload
from trainarena.jobs.uploads import UploadSink, check_file
from trainarena.orchestrator import drive
from trainarena.settings import JobRules, Settings
from trainarena.store import Store, open_store, tournament_runs
from trainarena.store.api_keys import create_key
from trainarena.store.models import ApiRole, Job, JobEvent, JobStatus, Run

pytestmark = pytest.mark.slow

# A custom resource no node of the module's cluster has, until the first test adds one that does.
RARE = "rare_accelerator"


def _settings(tmp_path: Path, address: str, **cluster: object) -> Settings:
    model = tmp_path / "model"
    model.mkdir(parents=True, exist_ok=True)
    (model / "config.json").write_text("{}")
    jobs = JobRules(base_models=(str(model),), poll_seconds=0.05, heartbeat_seconds=0.1, stale_seconds=30.0)
    return Settings(data_dir=tmp_path / "data", jobs=jobs, cluster={"executor": "ray", "address": address, "memory_per_run_mb": 256,
                                                                    "stop_poll_seconds": 0.2, **cluster})  # fmt: skip


def _wait_for(condition: Callable[[], object], what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _job(settings: Settings, store: Store) -> str:
    """A queued instruct job of a customer's uploaded file."""
    rows = "".join(json.dumps({"q": f"What is {i} plus {i}?", "a": str(2 * i)}) + "\n" for i in range(30))
    sink = UploadSink(settings.uploads_dir, settings.api.upload_max_bytes, "qa.jsonl")
    sink.write(rows.encode())
    sha = sink.finish()
    checked = check_file(sink.path, "qa.jsonl", "text", "jsonl", settings)
    with store.transaction() as session:
        owner = create_key(session, "acme", ApiRole.CUSTOMER).row.id
        upload = store_upload(session, settings, owner_key_id=owner, staging=sink.path, filename="qa.jsonl",
                              checked=checked, sha256=sha, size=sink.size)  # fmt: skip
        request = JobRequest("instruct", settings.jobs.base_models[0], upload.id, {"field_instruction": "q", "field_output": "a"})
        return create_job(session, settings, request, owner).id


def test_a_job_cancelled_while_its_task_waits_for_a_node_ends_at_once_and_its_task_never_runs(
        ray_cluster, tmp_path: Path, monkeypatch) -> None:  # fmt: skip
    monkeypatch.setattr(ray_executor, "task_resources", lambda *_: {"num_cpus": 1.0, "resources": {RARE: 1.0}})
    settings = _settings(tmp_path, ray_cluster.address)
    node = None
    with open_store(settings) as store:
        job_id = _job(settings, store)
        executor = RayExecutor(settings, MarksItsRuns())
        worker = JobWorker(settings, store=store, executor=executor)
        worker.start()
        run_dir = settings.work_dir / "jobs" / job_id / "attempt-1"
        try:
            _wait_for(lambda: "started" in _events(store, job_id), "the job's attempt to start")
            time.sleep(2.0)  # its Ray task waits in Ray's queue: no node has the resource it asks for
            with store.transaction() as session:
                cancel_job(session, job_id, None)
            cancelled = time.monotonic()
            _wait_for(lambda: _status(store, job_id) in JobStatus.FINISHED, "the cancelled job to end", seconds=30)
            ended_in = time.monotonic() - cancelled
            node = ray_cluster.add_worker(**{RARE: 1.0})  # a node that could hold it joins: nothing is left to run
            time.sleep(3.0)
            joined = any(RARE in n["Resources"] for n in ray.nodes() if n["Alive"])
        finally:
            worker.stop()
            executor.close()
            if node is not None:
                ray_cluster.cluster.remove_node(node)
        with store.session() as session:
            job = session.get_one(Job, job_id)
            attempt = session.get_one(Run, job.run_id).attempt_records[-1]
    assert job.status == JobStatus.CANCELLED and _events(store, job_id)[-1] == "cancelled" and ended_in < 10
    # The same outcome as a local run stopped while it waited for its devices: its attempt FAILED, never started.
    assert attempt.status == RunStatus.FAILED.value and attempt.failure_reason.startswith(STOPPED_REASON)
    assert "waiting for a Ray node to hold it (1 CPU, 1 rare_accelerator), and never started" in attempt.failure_reason
    assert (run_dir / START_CLAIM).read_text().startswith("withdrawn by the driver: stopped before a node started it")
    assert (run_dir / STOP_FILE).exists()
    assert joined and ran(settings.data_dir) == []  # its Ray task never ran, even on the node that joined


def _events(store: Store, job_id: str) -> list[str]:
    with store.session() as session:
        return list(session.scalars(select(JobEvent.kind).where(JobEvent.job_id == job_id).order_by(JobEvent.id)))


def _status(store: Store, job_id: str) -> str:
    with store.session() as session:
        return session.get_one(Job, job_id).status


def _drive(store: Store, settings: Settings, tid: int, executor: RayExecutor) -> object:
    """The drive's end, or the error it stopped with; it must be over within a minute."""
    outcome: list[object] = []

    def play() -> None:
        try:
            outcome.append(drive(store, tid, task_source=fake_task, executor=executor, rules=settings.rules,
                                 weight_rules=settings.weights, work_dir=settings.work_dir, parallel=2))  # fmt: skip
        except Exception as error:  # noqa: BLE001 - returned to the test
            outcome.append(error)

    driver = threading.Thread(target=play, daemon=True)
    driver.start()
    driver.join(timeout=60)
    assert not driver.is_alive(), "the drive was still waiting after a minute"
    return outcome[0]


def test_runs_no_live_node_can_hold_stop_the_drive_after_the_placement_timeout_and_cost_no_try(
        ray_cluster, tmp_path: Path, monkeypatch) -> None:  # fmt: skip
    # A GPU run while no GPU node is alive (the module's nodes have none): Ray would queue it forever.
    monkeypatch.setattr(ray_executor, "task_resources", lambda *_: {"num_cpus": 1.0, "num_gpus": 1, "memory": 256 * MB})
    settings = _settings(tmp_path, ray_cluster.address, placement_timeout_seconds=2.0)
    with open_store(settings) as store:
        tid = fake_tournament(store, ["c0", "c1", "c2", "c3"])
        executor = RayExecutor(settings, MarksItsRuns())
        try:
            started = time.monotonic()
            error = _drive(store, settings, tid, executor)
            took = time.monotonic() - started
            with store.session() as session:
                runs = [(run.status, len(run.attempt_records)) for run in tournament_runs(session, tid)]
            left = list((settings.work_dir / f"tournament-{tid}").glob("run-*/attempt-*"))
            reached_a_node = ran(settings.data_dir)
            monkeypatch.undo()  # the cluster can hold the runs again: driven again, they are claimed afresh
            finished = _drive(store, settings, tid, executor)
            with store.session() as session:
                again = [[a.status for a in run.attempt_records] for run in tournament_runs(session, tid)]
        finally:
            executor.close()
    assert isinstance(error, PlacementTimeout) and took < 30, error
    assert "asks for 1 CPU, 1 GPU, 256 MB memory, and for 2 s (cluster.placement_timeout_seconds) no live node" in str(error)
    assert re.search(r"the live nodes have: .*\d nodes of 1 CPU, 0 GPU, 1024 MB memory", str(error))  # the workers
    # Withdrawn, not failed: no competitor lost a try, and nothing reached a node.
    assert runs and all(run == (RunStatus.PENDING.value, 0) for run in runs)
    assert reached_a_node == [] and left == []  # the withdrawn attempts' folders went with them
    assert getattr(finished, "champion", None) is not None and all(attempts == ["succeeded"] for attempts in again)


def test_a_job_no_live_node_can_hold_fails_after_the_placement_timeout_saying_why(ray_cluster, tmp_path: Path, monkeypatch) -> None:
    """No node can place it: the platform's fault, so its tries cost the job none; it is queued again
    (to wait jobs.platform_retry_seconds) and fails, naming the platform, after jobs.max_platform_faults of them."""
    monkeypatch.setattr(ray_executor, "task_resources", lambda *_: {"num_cpus": 1.0, "num_gpus": 2})
    settings = _settings(tmp_path, ray_cluster.address, placement_timeout_seconds=1.0)
    settings = settings.model_copy(update={"jobs": settings.jobs.model_copy(update={
        "max_platform_faults": 2, "platform_retry_seconds": 0.1, "platform_retry_max_seconds": 0.1})})
    with open_store(settings) as store:
        job_id = _job(settings, store)
        executor = RayExecutor(settings, MarksItsRuns())
        worker = JobWorker(settings, store=store, executor=executor)
        worker.start()
        try:
            _wait_for(lambda: _status(store, job_id) in JobStatus.FINISHED, "the job to end", seconds=30)
        finally:
            worker.stop()
            executor.close()
        with store.session() as session:
            job = session.get_one(Job, job_id)
    assert job.status == JobStatus.FAILED
    assert job.failure_reason.startswith("the platform could not start its run 2 times (the last: the Ray cluster did not start")
    assert job.failure_reason.endswith("the platform's fault, not the job's; not tried again")
    assert "it asks for 1 CPU, 2 GPU, and for 1 s (cluster.placement_timeout_seconds)" in job.failure_reason
    assert ran(settings.data_dir) == []
