"""The device gate between tournament runs and jobs: never both on one device, the first side never
held back, the CPU treated as one device; and a backend behind it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from job_support import wait_for

from trainarena.contract import RunSpec, RunStatus, TaskType
from trainarena.execution import SandboxJob
from trainarena.execution.base import RunResult
from trainarena.jobs.gate import JOB, TOURNAMENT, DeviceGate, GatedBackend


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
