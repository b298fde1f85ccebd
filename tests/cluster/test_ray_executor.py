"""The Ray executor on a real local cluster (conftest): a tournament played to a champion with every
run a Ray task, a worker node killed mid-run, the driver killed mid-dispatch. Fake node executors
(``ray_fakes``) stand in for training here; ``test_ray_demo`` runs the real sandboxed pipeline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from ray_fakes import FakeOnNode, WaitForStop, executions, fake_task, fake_tournament

from trainarena.cluster import SharedPathMissing
from trainarena.cluster.node import AT_ONCE, START_CLAIM, STOP_FILE
from trainarena.cluster.ray_executor import RayExecutor
from trainarena.contract import RunStatus
from trainarena.engine.model import Finished, Stage
from trainarena.execution.supervise import StopAtOnce, stop_when
from trainarena.orchestrator import drive
from trainarena.runs import CompetitorInfo, RunRequest
from trainarena.settings import Settings
from trainarena.store import Store, open_store, tournament_runs

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent


def _settings(tmp_path: Path, address: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", cluster={"executor": "ray", "address": address, "memory_per_run_mb": 256})


def _drive(store: Store, settings: Settings, tid: int, executor: RayExecutor, parallel: int) -> Finished | None:
    return drive(store, tid, task_source=fake_task, executor=executor, rules=settings.rules, weight_rules=settings.weights,
                 work_dir=settings.work_dir, parallel=parallel)  # fmt: skip


def _drive_with(store: Store, settings: Settings, tid: int, factory: FakeOnNode, parallel: int) -> Finished | None:
    """A drive to the end with a fresh Ray executor over ``factory``."""
    executor = RayExecutor(settings, factory)
    try:
        return _drive(store, settings, tid, executor, parallel)
    finally:
        executor.close()


def _wait_for(condition: Callable[[], object], what: str, seconds: float = 60.0) -> object:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _runs(store: Store, tid: int) -> list[tuple[int, str, str, list[tuple[str, bool]]]]:
    """(run id, competitor, status, [(attempt status, scored)]) of every run."""
    with store.session() as session:
        return [(run.id, run.competitor.name, run.status,
                 [(a.status, a.evaluation is not None) for a in run.attempt_records]) for run in tournament_runs(session, tid)]  # fmt: skip


def test_a_tournament_plays_to_a_champion_with_every_run_a_ray_task(ray_cluster, tmp_path: Path) -> None:
    settings = _settings(tmp_path, ray_cluster.address)
    with open_store(settings) as store:
        tid = fake_tournament(store, [f"c{i}" for i in range(6)])
        finished = _drive_with(store, settings, tid, FakeOnNode(seconds=0.3), parallel=2)
        runs = _runs(store, tid)
        with store.session() as session:
            stored = {run.id: (run.artifact_path, run.artifact_digest) for run in tournament_runs(session, tid)}
    assert finished is not None and finished.champion is not None
    assert all(status == RunStatus.SUCCEEDED and attempts == [("succeeded", True)] for _, _, status, attempts in runs)
    tries = executions(settings.data_dir)
    assert sorted(run_id for run_id, _, _ in tries) == sorted(run_id for run_id, *_ in runs)  # each run once
    assert len({node for _, _, node in tries}) == 2  # both worker nodes played; the head node took none
    # The artifacts are on the operator's storage, where the store says they are.
    assert all((Path(path) / "model.safetensors").is_file() and digest for path, digest in stored.values())
    # The driver's shared-path check file is gone with the executor.
    assert not list((settings.data_dir / "cluster").iterdir())


def test_a_worker_node_killed_mid_run_leaves_an_interrupted_attempt_and_a_retry(ray_cluster, tmp_path: Path) -> None:
    ray_cluster.add_worker()  # the one killed below: the module's cluster keeps two workers
    settings = _settings(tmp_path, ray_cluster.address)
    with open_store(settings) as store:
        tid = fake_tournament(store, ["c0", "c1", "c2", "c3"])
        executor = RayExecutor(settings, FakeOnNode(seconds=0.3, slow_for="c2", slow_seconds=300))
        outcome: dict[str, object] = {}

        def play() -> None:
            try:
                outcome["finished"] = _drive(store, settings, tid, executor, parallel=3)
            except BaseException as error:  # noqa: BLE001 - reported by the test thread below
                outcome["error"] = error

        driver = threading.Thread(target=play)
        driver.start()
        try:
            node = _wait_for(lambda: _slow_try_node(store, tid, settings), "c2's first try to start")
            ray_cluster.kill(ray_cluster.node_with_id(str(node)))
            driver.join(timeout=120)
            assert not driver.is_alive(), "the drive did not finish after the node died"
        finally:
            executor.close()
        assert "error" not in outcome, outcome.get("error")
        runs = _runs(store, tid)
        with store.session() as session:
            reasons = {(run.competitor.name, a.number): a.failure_reason for run in tournament_runs(session, tid)
                       for a in run.attempt_records}  # fmt: skip
    finished = outcome["finished"]
    assert isinstance(finished, Finished) and finished.champion is not None
    lost = [attempts for _, name, _, attempts in runs if name == "c2"][0]
    assert lost[:2] == [("interrupted", False), ("succeeded", True)]  # recorded, tried again, scored once
    assert "lost on the Ray cluster" in (reasons[("c2", 1)] or "")
    assert all(attempts == [("succeeded", True)] for _, name, _, attempts in runs if name != "c2")
    assert ray_cluster.worker_count() == 2


def _slow_try_node(store: Store, tid: int, settings: Settings) -> str | None:
    """The node c2's first (slow) try runs on, once it started."""
    c2 = {run_id for run_id, name, _, _ in _runs(store, tid) if name == "c2"}
    return next((node for run_id, attempt, node in executions(settings.data_dir) if run_id in c2 and attempt == 1), None)


def test_a_driver_killed_mid_dispatch_resumes_without_running_finished_runs_again(ray_cluster, tmp_path: Path) -> None:
    settings = _settings(tmp_path, ray_cluster.address)
    with open_store(settings) as store:
        tid = fake_tournament(store, ["c0", "c1", "c2", "c3", "c4", "c5"])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    driver = subprocess.Popen([sys.executable, str(HERE / "drive_on_ray.py"), ray_cluster.address, str(settings.data_dir), str(tid)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        with open_store(settings) as store:
            _wait_for(lambda: _alive(driver) and _slow_try_node(store, tid, settings)
                      and any(status == RunStatus.SUCCEEDED for _, _, status, _ in _runs(store, tid)),
                      "a run stored and c2's slow run dispatched")  # fmt: skip
            driver.send_signal(signal.SIGKILL)
            driver.wait(timeout=30)
            done_before = {run_id for run_id, _, status, _ in _runs(store, tid) if status == RunStatus.SUCCEEDED}
            finished = _drive_with(store, settings, tid, FakeOnNode(seconds=0.1), parallel=2)
            runs = _runs(store, tid)
    finally:
        if driver.poll() is None:
            driver.kill()
        output = driver.communicate()[0].decode(errors="replace")
    assert finished is not None and finished.champion is not None, output
    tries = Counter(run_id for run_id, _, _ in executions(settings.data_dir))
    assert done_before and all(tries[run_id] == 1 for run_id in done_before)  # nothing finished ran again
    interrupted = [run_id for run_id, _, _, attempts in runs if attempts[0] == ("interrupted", False)]
    assert interrupted  # c2's slow try at least: recorded as interrupted by the driver that took over
    for run_id, _, status, attempts in runs:
        assert status == RunStatus.SUCCEEDED and sum(scored for _, scored in attempts) == 1
        # An interrupted attempt may never have reached a node (claimed, then the driver was killed before
        # its dispatch); every other attempt ran exactly once.
        assert sum(status != "interrupted" for status, _ in attempts) <= tries[run_id] <= len(attempts)


def _alive(driver: subprocess.Popen[bytes]) -> bool:
    if driver.poll() is not None:
        raise AssertionError(f"the driver exited early ({driver.returncode}): {driver.communicate()[0].decode(errors='replace')}")
    return True


def test_a_node_that_does_not_see_the_data_directory_refuses_the_work(ray_cluster, tmp_path: Path) -> None:
    settings = _settings(tmp_path, ray_cluster.address)
    executor = RayExecutor(settings, FakeOnNode())
    try:
        assert executor.evaluate_base_model(fake_task("text", None, "m", 0, 1)).evaluation is not None  # type: ignore[arg-type]
        check = next((settings.data_dir / "cluster").iterdir())
        check.unlink()  # as on a node where the data directory is another (unshared) folder
        with pytest.raises(SharedPathMissing, match=f"check file {check} is missing there; mount the shared data directory"):
            executor.evaluate_base_model(fake_task("text", None, "m", 0, 1))  # type: ignore[arg-type]
    finally:
        executor.close()


def _stop_once_started(run_dir: Path, stop: threading.Event | None = None) -> threading.Event:
    """A stop (``stop``, or a plain one) set once the run's node has claimed its start (and begun the work)."""
    stop = threading.Event() if stop is None else stop

    def watch() -> None:
        _wait_for(lambda: (run_dir / START_CLAIM).is_file(), "the node to start the run")
        stop.set()

    threading.Thread(target=watch, daemon=True).start()
    return stop


def test_a_job_run_stopped_on_the_driver_stops_on_its_node(ray_cluster, tmp_path: Path) -> None:
    """A job's cancellation (``stop_when`` around ``run_task``, as the job runner does) reaches the node:
    through the stop file its watcher polls, never by cancelling the started task (``test_ray_waiting``
    has a run stopped before it started)."""
    settings = _settings(tmp_path, ray_cluster.address)
    executor = RayExecutor(settings, WaitForStop(seconds=60))
    competitor = CompetitorInfo("c0", "https://example.org/c0.git", "f" * 40, "tree", "train.py")
    try:
        stop = _stop_once_started(tmp_path / "job")
        started = time.monotonic()
        with stop_when(stop):
            report = executor.run_task(competitor, fake_task("text", None, "m", 0, 1), tmp_path / "job", "job-try1")  # type: ignore[arg-type]
    finally:
        executor.close()
    assert report.failure_reason == "stopped on request" and time.monotonic() - started < 30
    assert (tmp_path / "job" / STOP_FILE).is_file()
    assert (tmp_path / "job" / START_CLAIM).read_text().startswith("started on Ray node")


def test_a_run_stopped_at_once_on_the_driver_is_killed_at_once_on_its_node(ray_cluster, tmp_path: Path) -> None:
    """A stop that keeps nothing of the run (a job's try withdrawn as its service stops, a dropped early
    run) kills it on its node without the grace, as a local run is: it was given the grace there."""
    settings = _settings(tmp_path, ray_cluster.address)
    executor = RayExecutor(settings, WaitForStop(seconds=60))
    competitor = CompetitorInfo("c0", "https://example.org/c0.git", "f" * 40, "tree", "train.py")
    try:
        stop = _stop_once_started(tmp_path / "job", StopAtOnce())
        with stop_when(stop):
            report = executor.run_task(competitor, fake_task("text", None, "m", 0, 1), tmp_path / "job", "job-try1")  # type: ignore[arg-type]
    finally:
        executor.close()
    assert report.failure_reason == "stopped at once"
    assert (tmp_path / "job" / STOP_FILE).read_text() == AT_ONCE


class _AskedAtOnceLater(StopAtOnce):
    """A stop first with the grace (a customer's cancel), then at once (its service stops meanwhile)."""

    asked_at_once = False

    def at_once(self) -> bool:
        return self.asked_at_once and self.is_set()


def test_a_run_stopped_with_the_grace_is_killed_at_once_when_asked_later(ray_cluster, tmp_path: Path) -> None:
    """The driver rewrites the stop file when its stop comes to ask at once, and the node's watcher
    reads it again: it read the file once, so the run kept its whole grace."""
    settings = _settings(tmp_path, ray_cluster.address)
    executor = RayExecutor(settings, WaitForStop(seconds=60, grace=30))
    competitor = CompetitorInfo("c0", "https://example.org/c0.git", "f" * 40, "tree", "train.py")
    stop = _stop_once_started(tmp_path / "job", _AskedAtOnceLater())

    def ask_at_once_once_asked_with_the_grace() -> None:
        _wait_for(lambda: (tmp_path / "job" / STOP_FILE).is_file(), "the stop file asking with the grace")
        assert (tmp_path / "job" / STOP_FILE).read_text() == ""
        stop.asked_at_once = True

    threading.Thread(target=ask_at_once_once_asked_with_the_grace, daemon=True).start()
    started = time.monotonic()
    try:
        with stop_when(stop):
            report = executor.run_task(competitor, fake_task("text", None, "m", 0, 1), tmp_path / "job", "job-try1")  # type: ignore[arg-type]
    finally:
        executor.close()
    assert report.failure_reason == "stopped at once" and time.monotonic() - started < 25
    assert (tmp_path / "job" / STOP_FILE).read_text() == AT_ONCE


def test_a_tournament_run_stopped_on_the_driver_stops_on_its_node(ray_cluster, tmp_path: Path) -> None:
    """A stop around a drive (serve's, or a lease lost to another driver) reaches a tournament run's node too."""
    settings = _settings(tmp_path, ray_cluster.address)
    executor = RayExecutor(settings, WaitForStop(seconds=60))
    competitor = CompetitorInfo("c0", "https://example.org/c0.git", "f" * 40, "tree", "train.py")
    request = RunRequest(1, "t", 1, 1, 1, competitor, Stage.KNOCKOUT, "r1-k001", 0, fake_task("text", None, "m", 0, 1),  # type: ignore[arg-type]
                         tmp_path / "run-1" / "attempt-1")
    request.run_dir.mkdir(parents=True)
    try:
        stop = _stop_once_started(request.run_dir)
        started = time.monotonic()
        with stop_when(stop):
            report = executor.execute(request)
    finally:
        executor.close()
    assert report.failure_reason == "stopped on request" and time.monotonic() - started < 30
    assert (request.run_dir / STOP_FILE).is_file()
    assert (request.run_dir / START_CLAIM).read_text().startswith("started on Ray node")


def test_work_ray_itself_refused_stops_the_drive_instead_of_being_tried_forever(ray_cluster, tmp_path: Path, monkeypatch) -> None:
    # Ray's memory monitor (or a failed runtime environment) would refuse a retry just the same: only a
    # run lost with its node or worker is RunInterrupted and tried again.
    from ray.exceptions import OutOfMemoryError, WorkerCrashedError

    from trainarena.cluster import ray_executor
    from trainarena.runs import RunInterrupted

    settings = _settings(tmp_path, ray_cluster.address)
    executor = RayExecutor(settings, FakeOnNode(seconds=0.0))
    task = fake_task("text", None, "boss", 0, 1)
    try:
        for error, expected, said in ((OutOfMemoryError("the node ran low on memory"), RuntimeError, "did not run"),
                                      (WorkerCrashedError(), RunInterrupted, "tried again")):
            def refuse(*_args, error=error, **_kwargs):
                raise error

            monkeypatch.setattr(ray_executor.ray, "get", refuse)
            with pytest.raises(expected, match=said) as raised:
                executor.evaluate_base_model(task)
            assert type(raised.value) is expected and type(error).__name__ in str(raised.value)
    finally:
        monkeypatch.undo()
        executor.close()


def test_runs_still_ask_for_gpus_while_every_gpu_node_is_down(ray_cluster, tmp_path: Path, monkeypatch) -> None:
    # Ray reports a dead node's resources as none: a driver that trusted only the nodes alive now
    # would send GPU-sized runs to the CPU while the GPU nodes restart, measured on other hardware.
    from trainarena.cluster import ray_executor

    gpu_node = {"Alive": True, "Resources": {"CPU": 8.0, "GPU": 4.0}}
    monkeypatch.setattr(ray_executor.ray, "nodes", lambda: [{"Alive": True, "Resources": {"CPU": 1.0}}, gpu_node])
    executor = RayExecutor(_settings(tmp_path, ray_cluster.address), FakeOnNode(seconds=0.0))
    try:
        assert executor._largest_node_gpus() == 4.0
        gpu_node.update(Alive=False, Resources={})
        assert executor._largest_node_gpus() == 4.0
    finally:
        monkeypatch.undo()
        executor.close()
