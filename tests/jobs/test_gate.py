"""The device gate between tournament runs and jobs: never both on one device, the first side never
held back, the CPU treated as one device; a backend behind it; and a run waiting at it stopped (a
cancelled job, a worker stopping) without waiting out the other side's run."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from job_support import customer, fast_settings, queued_job, uploaded, wait_for

from trainarena.contract import RunSpec, RunStatus, TaskType
from trainarena.execution import SandboxJob
from trainarena.execution.base import RunResult
from trainarena.execution.supervise import current_stop_event
from trainarena.jobs import JobWorker, cancel_job
from trainarena.jobs.gate import JOB, TOURNAMENT, DeviceGate, GatedBackend, StoppedAtGate
from trainarena.runs import CompetitorInfo, RunReport
from trainarena.store import Store, open_store
from trainarena.store.models import Job, JobStatus
from trainarena.tasks.base import TaskDefinition


class Runs:
    """Runs entering a gate from threads, each holding until released; records who was inside when."""

    def __init__(self, gate: DeviceGate) -> None:
        self.gate = gate
        self.inside: list[str] = []
        self.entered: list[str] = []
        self._releases: dict[str, threading.Event] = {}
        self._threads: list[threading.Thread] = []

    def start(self, name: str, side: str, devices: tuple[int, ...] = ()) -> None:
        release = self._releases[name] = threading.Event()

        def run() -> None:
            with self.gate.hold(side, devices):
                self.inside.append(name)
                self.entered.append(name)
                release.wait(10)
                self.inside.remove(name)

        thread = threading.Thread(target=run, daemon=True)
        self._threads.append(thread)
        thread.start()

    def release(self, name: str) -> None:
        self._releases[name].set()

    def settle(self) -> None:
        time.sleep(0.1)  # long enough for a thread that may enter to have entered

    def finish(self) -> None:
        for release in self._releases.values():
            release.set()
        for thread in self._threads:
            thread.join(5)


def test_on_the_cpu_a_job_waits_for_a_tournament_run_in_flight_or_waiting() -> None:
    runs = Runs(DeviceGate("tournaments_first"))
    try:
        runs.start("job-a", JOB)
        wait_for(lambda: runs.inside == ["job-a"])
        runs.start("tournament", TOURNAMENT)  # waits for job-a, which is already running
        wait_for(lambda: runs.gate.busy(TOURNAMENT))
        runs.start("job-b", JOB)  # must not pass the waiting tournament run
        runs.settle()
        assert runs.inside == ["job-a"]
        runs.release("job-a")
        wait_for(lambda: runs.inside == ["tournament"])
        runs.settle()
        assert runs.inside == ["tournament"]
        runs.release("tournament")
        wait_for(lambda: runs.inside == ["job-b"])
        assert runs.entered == ["job-a", "tournament", "job-b"]
    finally:
        runs.finish()


def test_jobs_first_lets_jobs_pass_a_waiting_tournament_run() -> None:
    runs = Runs(DeviceGate("jobs_first"))
    try:
        runs.start("job-a", JOB)
        wait_for(lambda: runs.inside == ["job-a"])
        runs.start("tournament", TOURNAMENT)
        wait_for(lambda: runs.gate.busy(TOURNAMENT))
        runs.start("job-b", JOB)
        wait_for(lambda: sorted(runs.inside) == ["job-a", "job-b"])
        runs.release("job-a")
        runs.settle()
        assert runs.inside == ["job-b"]  # the tournament run still waits for the device
        runs.release("job-b")
        wait_for(lambda: runs.inside == ["tournament"])
    finally:
        runs.finish()


def test_runs_on_different_gpus_go_side_by_side_and_never_share_one() -> None:
    runs = Runs(DeviceGate("tournaments_first"))
    try:
        runs.start("tournament-gpu0", TOURNAMENT, (0,))
        runs.start("job-gpu1", JOB, (1,))
        wait_for(lambda: sorted(runs.inside) == ["job-gpu1", "tournament-gpu0"])
        runs.start("job-gpu0-and-1", JOB, (0, 1))
        runs.settle()
        assert "job-gpu0-and-1" not in runs.inside
        runs.release("tournament-gpu0")
        wait_for(lambda: "job-gpu0-and-1" in runs.inside)  # jobs share with jobs; only the tournament blocked it
    finally:
        runs.finish()


def test_an_unknown_rule_is_refused() -> None:
    with pytest.raises(ValueError, match="share_with_tournaments 'whoever' is not one of"):
        DeviceGate("whoever")


class RecordingBackend:
    name = "recording"

    def __init__(self, gate: DeviceGate) -> None:
        self.gate = gate
        self.busy_during_run: list[bool] = []

    def run(self, job: SandboxJob) -> RunResult:
        self.busy_during_run.append(self.gate.busy(JOB))
        return RunResult(RunStatus.SUCCEEDED, 0, 0.0, 1.0, job.log_dir / "stdout.log", job.log_dir / "stderr.log")

    def close(self) -> None:
        pass


def test_a_gated_backend_holds_the_gate_around_each_run(tmp_path: Path) -> None:
    gate = DeviceGate("tournaments_first")
    inner = RecordingBackend(gate)
    spec = RunSpec(run_id="r", task_type=TaskType.INSTRUCT, dataset_file="train.jsonl", budget_seconds=1.0, seed=0, devices=(0,),
                   base_model_name="m")  # fmt: skip
    job = SandboxJob(spec, "train.py", tmp_path, tmp_path, tmp_path, tmp_path, 1.0, 64, 1024)
    assert GatedBackend(inner, gate, JOB).run(job).status == RunStatus.SUCCEEDED
    assert inner.busy_during_run == [True] and not gate.busy(JOB)


def test_a_run_stopped_while_waiting_at_the_gate_never_enters() -> None:
    gate, stop = DeviceGate("tournaments_first"), threading.Event()
    runs = Runs(gate)
    outcome: list[str] = []

    def waiting_job() -> None:
        try:
            with gate.hold(JOB, (), stop):
                outcome.append("entered")
        except StoppedAtGate as stopped:
            outcome.append(str(stopped))

    try:
        runs.start("tournament", TOURNAMENT)
        wait_for(lambda: runs.inside == ["tournament"])
        waiter = threading.Thread(target=waiting_job, daemon=True)
        waiter.start()
        wait_for(lambda: gate.busy(JOB), what="the job to wait at the gate")
        stop.set()
        waiter.join(5)
        assert len(outcome) == 1 and "never started" in outcome[0]
        assert not gate.busy(JOB)  # no longer counted as waiting
    finally:
        runs.finish()


class WaitsForStop:
    """A backend whose run lasts until the stop around it (``stop_when``) is set."""

    name = "fake"

    def run(self, job: SandboxJob) -> RunResult:
        stop = current_stop_event()
        while stop is not None and not stop.is_set():
            time.sleep(0.02)
        return RunResult(RunStatus.FAILED, None, time.time(), time.time(), job.log_dir / "o", job.log_dir / "e", "stopped")

    def close(self) -> None:
        pass


class GatedExecutor:
    """Runs the job's sandbox through the gate as SandboxedExecutor.run_task does (``backend.run``)."""

    def __init__(self, gate: DeviceGate) -> None:
        self.backend = GatedBackend(WaitsForStop(), gate, JOB)
        self.reports: list[RunReport] = []

    def run_task(self, competitor: CompetitorInfo, task: TaskDefinition, run_dir: Path, run_name: str) -> RunReport:
        run_dir.mkdir(parents=True, exist_ok=True)
        spec = RunSpec(run_id=run_name, task_type=TaskType.INSTRUCT, dataset_file="t.jsonl", budget_seconds=1.0, seed=0,
                       devices=(), base_model_name="m")  # fmt: skip
        result = self.backend.run(SandboxJob(spec, "train.py", run_dir, run_dir, run_dir, run_dir, 1.0, 64, 1024))
        self.reports.append(RunReport(result.status, result.started_at, result.finished_at, failure_reason=result.failure_reason))
        return self.reports[-1]


@pytest.fixture
def gated_job(tmp_path: Path) -> Iterator[tuple[Store, str, int, JobWorker, GatedExecutor]]:
    """A job waiting at the gate behind a tournament run that holds it (up to 10 s, ``Runs``); the
    worker is stopped at the end if the test did not stop it."""
    gate = DeviceGate("tournaments_first")
    runs = Runs(gate)
    runs.start("tournament", TOURNAMENT)
    settings = fast_settings(tmp_path / "data")
    with open_store(settings) as store:
        owner = customer(store)
        job_id = queued_job(settings, store, owner, uploaded(settings, store, owner))
        executor = GatedExecutor(gate)
        worker = JobWorker(settings, store=store, executor=executor, gate=gate)
        worker.start()
        try:
            wait_for(lambda: gate.busy(JOB), what="the job to wait at the gate")
            yield store, job_id, owner, worker, executor
        finally:
            runs.finish()
            worker.stop()


def test_a_job_waiting_at_the_gate_is_cancelled_at_once(gated_job) -> None:  # noqa: ANN001
    store, job_id, owner, _worker, executor = gated_job
    with store.transaction() as session:
        cancel_job(session, job_id, owner)
    wait_for(lambda: job_status(store, job_id) == JobStatus.CANCELLED, timeout=5, what="the job to end cancelled")
    assert "waiting at the device gate" in (executor.reports[0].failure_reason or "")


def test_stopping_the_worker_does_not_wait_for_the_tournament_run(gated_job) -> None:  # noqa: ANN001
    store, job_id, _owner, worker, _executor = gated_job
    stopper = threading.Thread(target=worker.stop, daemon=True)
    stopper.start()
    stopper.join(5)
    assert not stopper.is_alive(), "JobWorker.stop() still waits behind the tournament run"
    assert job_status(store, job_id) == JobStatus.QUEUED  # queued again, for the next start


def job_status(store: Store, job_id: str) -> str:
    with store.session() as session:
        return session.get_one(Job, job_id).status
