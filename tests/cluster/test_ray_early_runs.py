"""Early runs (``early_runs``) on a real local Ray cluster (conftest), two run slots on its two worker
nodes: a final between ``a`` and ``b`` before a boss round against the champion, ``a``'s run failing
at once, so a slot trains the boss round early while ``b``'s final runs on the other node. Each run
runs a real script deaf to SIGTERM (``ray_fakes.ScriptOnNode``): an early run the tournament adopts
is stored in its run's folder, where the node wrote it; one it drops is killed at once on its node,
not after its grace, and its folder on the shared data directory is removed. A script that reaches its
deadline on its node is told on the driver, in its grace, as the look ahead needs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import ray
from ray_fakes import ScriptOnNode, fake_task, fake_tournament, ran, scripts_ended, trained_early

from trainarena.cluster.ray_executor import RayExecutor
from trainarena.contract import RunStatus
from trainarena.engine.model import Finished, Stage
from trainarena.execution.supervise import STOPPED_REASON, told_at_deadline
from trainarena.orchestrator import drive
from trainarena.runs import CompetitorInfo, RunRequest
from trainarena.settings import Settings
from trainarena.store import Store, open_store, tournament_runs

pytestmark = pytest.mark.slow

CHAMPION = "king"
GRACE_SECONDS = 30.0  # the early runs' scripts ignore SIGTERM: a stop with the grace would take this long
# How long after b's failure ruled it out the dropped early run may still run: the driver's and the
# node's polls of its stop file (``cluster.stop_poll_seconds``), the kill, and a loaded test machine.
DROPPED_WITHIN_SECONDS = 5.0


def _drive(settings: Settings, store: Store, tid: int, factory: ScriptOnNode) -> Finished | None:
    executor = RayExecutor(settings, factory)
    try:
        return drive(store, tid, task_source=fake_task, executor=executor, rules=settings.rules,
                     weight_rules=settings.weights, work_dir=settings.work_dir, parallel=2)  # fmt: skip
    finally:
        executor.close()


def _settings(tmp_path: Path, address: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", cluster={"executor": "ray", "address": address, "memory_per_run_mb": 256})


def test_an_early_run_trained_on_a_node_is_adopted_into_its_runs_folder(ray_cluster, tmp_path: Path) -> None:
    settings = _settings(tmp_path, ray_cluster.address)
    with open_store(settings) as store:
        tid = fake_tournament(store, ["a", "b"], champion=CHAMPION)
        finished = _drive(settings, store, tid, ScriptOnNode(fails=frozenset({"a"}), waits_for_early="b", grace=GRACE_SECONDS))
        with store.session() as session:
            runs = [(run.id, run.competitor.name, run.status, len(run.attempt_records), run.artifact_path,
                     run.counted_attempt.log_path) for run in tournament_runs(session, tid)]  # fmt: skip
    assert finished is not None and finished.champion is not None
    started = [Path(folder) for folder in ran(settings.data_dir)]
    early = [folder for folder in started if trained_early(folder)]
    assert early, "no run was trained early"
    assert len(started) == len(runs)  # none trained twice
    folders = {run_id: settings.work_dir / f"tournament-{tid}" / f"run-{run_id}" / "attempt-1" for run_id, *_ in runs}
    assert len([run_id for run_id, folder in folders.items() if folder not in started]) == len(early)  # each adopted
    for run_id, name, status, attempts, artifact, logs in runs:
        assert attempts == 1 and status == (RunStatus.FAILED if name == "a" else RunStatus.SUCCEEDED)
        # What the node wrote (an early run's folder, moved on adoption) is where the driver stored it.
        assert Path(logs) == folders[run_id] / "logs" and (folders[run_id] / "logs" / "stdout.log").is_file()
        if name != "a":
            assert Path(artifact) == folders[run_id] / "output" and (Path(artifact) / "model.safetensors").is_file()
    assert not (settings.work_dir / f"tournament-{tid}" / "early").exists()


def test_an_early_run_dropped_is_killed_at_once_on_its_node_and_its_folder_removed(ray_cluster, tmp_path: Path) -> None:
    # b's final fails too: nobody challenges the champion, and the boss run training early is dropped.
    settings = _settings(tmp_path, ray_cluster.address)
    factory = ScriptOnNode(early_seconds=120.0, fails=frozenset({"a", "b"}), waits_for_early="b", grace=GRACE_SECONDS)
    with open_store(settings) as store:
        tid = fake_tournament(store, ["a", "b"], champion=CHAMPION)
        started = time.monotonic()
        finished = _drive(settings, store, tid, factory)
        drive_seconds = time.monotonic() - started
        with store.session() as session:
            stored = sorted(run.competitor.name for run in tournament_runs(session, tid))
    assert finished is not None and finished.champion == CHAMPION and not finished.crowned
    assert stored == ["a", "b"]  # the early run was never stored
    ended = scripts_ended(settings.data_dir)
    dropped = [(folder, at, how) for _name, folder, at, how in ended if trained_early(folder)]
    assert len(dropped) == 1, ended
    (folder, killed, how), = dropped
    b_failed = next(at for name, run_folder, at, _how in ended if name == "b" and not trained_early(run_folder))
    assert how.startswith(STOPPED_REASON)
    assert killed - b_failed < DROPPED_WITHIN_SECONDS  # at once: not after its grace, nor its script's end
    assert drive_seconds < GRACE_SECONDS
    assert not folder.parent.exists() and not (settings.work_dir / f"tournament-{tid}" / "early").exists()
    _wait_until_freed()


def _wait_until_freed(seconds: float = 5.0) -> None:
    """Every worker node's CPU is free again soon after the drive: the killed run no longer holds its node."""
    deadline = time.monotonic() + seconds
    while ray.available_resources().get("CPU", 0.0) < ray.cluster_resources()["CPU"]:
        assert time.monotonic() < deadline, f"the nodes are still held: {ray.available_resources()}"
        time.sleep(0.05)


def test_a_script_at_its_deadline_on_its_node_is_told_on_the_driver_within_its_grace(ray_cluster, tmp_path: Path) -> None:
    """The look ahead takes a run whose script reached its deadline as failed from then (``early_runs``):
    on Ray too, not only once the run ends after its grace."""
    settings = _settings(tmp_path, ray_cluster.address)
    grace = 5.0
    executor = RayExecutor(settings, ScriptOnNode(early_seconds=60.0, budget_seconds=1.0, grace=grace))
    competitor = CompetitorInfo(CHAMPION, "https://example.org/king.git", "f" * 40, "tree", "train.py")
    request = RunRequest(1, "t", -1, 1, -1, competitor, Stage.BOSS, "boss", 0, fake_task("text", Stage.BOSS, "boss", 0, 1),
                         settings.work_dir / "early" / "boss-t0-king" / "attempt-1")  # fmt: skip
    request.run_dir.mkdir(parents=True)
    told: list[float] = []
    try:
        with told_at_deadline(lambda: told.append(time.monotonic())):
            report = executor.execute(request)
    finally:
        executor.close()
    assert report.status == RunStatus.TIMED_OUT and len(told) == 1
    assert time.monotonic() - told[0] > grace / 2  # told while the script still had its grace
