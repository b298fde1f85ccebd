"""A driver stopped on purpose (SIGINT or SIGTERM, handled: ``runs.DriverStopped``) kills its runs at
once, records their attempts as withdrawn, which cost the competitor no try, and releases its lease;
a run left by a killed driver (no handler ran) is still interrupted and counts, and ``max_attempts``
still fails a run interrupted that often."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType

import pytest

from trainarena.contract import Direction, RunStatus, TaskType
from trainarena.engine.model import Stage
from trainarena.execution.supervise import STOPPED_REASON, StopAtOnce, current_stop_event
from trainarena.orchestrator import create_tournament, drive
from trainarena.runs import DiskFull, DriverStopped, RunReport, RunRequest, deferred_in_database_call
from trainarena.settings import Settings
from trainarena.store import Store, add_competitor, tournament_runs
from trainarena.store.leases import lease_holder
from trainarena.tasks.base import Evaluation, TaskDefinition

NAMES = ["a", "b"]


def _task_source(kind: str, stage: Stage, match_id: str, task_index: int, seed: int) -> TaskDefinition:
    return TaskDefinition(f"{stage}-{match_id}-{task_index}", TaskType.INSTRUCT, "tiny-llama",
                          {"source": "fake", "seed": seed}, 1.0, seed)


class Scores:
    """Every run succeeds; ``a`` scores best."""

    def execute(self, request: RunRequest) -> RunReport:
        loss = 1.0 if request.competitor.name == "a" else 2.0
        return RunReport(RunStatus.SUCCEEDED, 0.0, 1.0, None, request.run_dir, "ab" * 32,
                         evaluation=Evaluation(loss, Direction.LOWER))


class StoppedWhileTraining(Scores):
    """``b``'s run trains until stopped; once it started, the driver's process gets SIGUSR1, whose
    handler (as the CLI's for SIGTERM) raises DriverStopped on the driving thread."""

    def __init__(self) -> None:
        self.seen: list[tuple[bool, bool]] = []  # (stopped, at once) as the run saw its stop
        self.ended = threading.Event()  # b's run returned (the drive may end first: it stops, not waits)

    def execute(self, request: RunRequest) -> RunReport:
        if request.competitor.name != "b":
            return super().execute(request)
        (request.run_dir / "output").mkdir(parents=True, exist_ok=True)
        (request.run_dir / "output" / "half.safetensors").write_bytes(b"x")
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGUSR1)
        stop, deadline = current_stop_event(), time.monotonic() + 30
        while (stop is None or not stop.is_set()) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.seen.append((stop is not None and stop.is_set(), isinstance(stop, StopAtOnce) and stop.at_once()))
        self.ended.set()
        return RunReport(RunStatus.FAILED, 0.0, 1.0, failure_reason=STOPPED_REASON)


@pytest.fixture
def sigterm_handler() -> Iterator[None]:
    assert threading.current_thread() is threading.main_thread()

    def stop(signum: int, frame: FrameType | None) -> None:  # as the CLI's (cli/demo.py, stop_at_once_on_signals)
        if not deferred_in_database_call(signum, frame):
            raise DriverStopped(signal.SIGTERM)

    previous = signal.signal(signal.SIGUSR1, stop)
    yield
    signal.signal(signal.SIGUSR1, previous)


def _tournament(store: Store) -> int:
    with store.transaction() as session:
        for name in NAMES:
            add_competitor(session, name=name, repo_url=f"https://example.org/{name}.git", commit="f" * 40,
                           tree_hash=f"tree-{name}", source_digest=f"digest-{name}", entrypoint="train.py")
        return create_tournament(session, name="t1", kind="text", seed=11, entrants=NAMES).id


def _drive(store: Store, settings: Settings, tid: int, executor, **kwargs):
    return drive(store, tid, task_source=_task_source, executor=executor, rules=settings.rules,
                 weight_rules=settings.weights, work_dir=settings.work_dir, max_attempts=2, **kwargs)


def _b_run(store: Store, tid: int):
    with store.session() as session:
        run = next(r for r in tournament_runs(session, tid) if r.competitor.name == "b")
        return run.id, run.status, [(a.number, a.status, a.failure_reason) for a in run.attempt_records]


@pytest.mark.parametrize("parallel", [1, 2])
def test_stops_by_signal_cost_no_try_however_many(store: Store, settings: Settings, sigterm_handler, parallel: int) -> None:
    tid = _tournament(store)
    for _ in range(3):  # more than max_attempts (2)
        executor = StoppedWhileTraining()
        started = time.monotonic()
        with pytest.raises(DriverStopped):
            _drive(store, settings, tid, executor, parallel=parallel)
        # Killed at once. A signal landing as the run was being handed to its thread ends the drive
        # before that thread looked at its stop event: it sees it within moments.
        assert executor.ended.wait(5) and executor.seen == [(True, True)] and time.monotonic() - started < 10
        with store.session() as session:
            assert lease_holder(session, tid) is None  # released: the next driver starts at once
        run_id, status, attempts = _b_run(store, tid)
        assert status == RunStatus.PENDING and attempts[-1][1] == "withdrawn"
        assert "was stopped by SIGTERM" in (attempts[-1][2] or "")
        folder = settings.work_dir / f"tournament-{tid}" / f"run-{run_id}" / f"attempt-{attempts[-1][0]}"
        assert not (folder / "output").exists()  # nothing of it is scored or kept
    finished = _drive(store, settings, tid, Scores())
    assert finished is not None and finished.champion == "a"
    _, status, attempts = _b_run(store, tid)
    assert status == RunStatus.SUCCEEDED
    assert [(n, s) for n, s, _ in attempts] == [(1, "withdrawn"), (2, "withdrawn"), (3, "withdrawn"), (4, "succeeded")]


class FullDisk(Scores):
    def execute(self, request: RunRequest) -> RunReport:
        if request.competitor.name == "b":
            raise DiskFull("run x not counted: the data directory's disk is full: /data has 0.0 MB free; free space and run again")
        return super().execute(request)


def test_a_full_disk_stops_the_drive_and_costs_no_try(store: Store, settings: Settings) -> None:
    tid = _tournament(store)
    for _ in range(3):
        with pytest.raises(DiskFull, match="disk is full"):
            _drive(store, settings, tid, FullDisk())
        _, status, attempts = _b_run(store, tid)
        assert status == RunStatus.PENDING and attempts == []  # withdrawn: as if never claimed
        with store.session() as session:
            assert lease_holder(session, tid) is None
    assert _drive(store, settings, tid, Scores()) is not None
    assert _b_run(store, tid)[1] == RunStatus.SUCCEEDED


