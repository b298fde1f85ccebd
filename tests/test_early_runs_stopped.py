"""A drive stopped at once (a stop signal, its tournament cancelled) with runs trained early
(``early_runs``): their folders under ``early/`` are removed then, not left for a next drive that a
cancelled tournament never gets; an early run its round adopted has its folder moved to the stored
run's attempt folder, whose withdrawal keeps its logs as any run's; a resumed drive then plays the
tournament to its end, each run stored once."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from early_run_executors import CHAMPION, WAIT_SECONDS, RecordingExecutor, add_competitors, succeeded, task_source
from trainarena.contract import RunStatus
from trainarena.engine.model import Stage
from trainarena.operations.cancelling import cancel_tournament
from trainarena.orchestrator import create_tournament, drive
from trainarena.runs import DriverStopped, RunReport, RunRequest
from trainarena.settings import LeaseRules, Settings
from trainarena.store import AttemptStatus, Store, tournament_runs
from trainarena.store.tournaments import TournamentCancelled


def _succeeded(request: RunRequest) -> RunReport:
    return succeeded(1.0 if request.competitor.name == "b" else 2.0, log_path=request.run_dir / "logs")


@dataclass
class StoppedWithEarlyRuns(RecordingExecutor):
    """A final of ``a`` (fails at once) against ``b`` before a boss round against ``king``, on two slots:
    the free slot trains a boss run early, until stopped. The drive is stopped (``stop``: it signals
    ``stopper``) from b's final once the early run started (``at`` "final": the early run is not
    adopted yet), or from the first boss run claimed after the final (``at`` "boss": the boss round's
    claim adopted the early run, which still trains)."""

    stop: threading.Event | None = None  # set: stopped already (the resumed drive's executor has none)
    at: str = "final"
    stopper: Callable[[], object] = lambda: None  # what stops the drive (set by the test)

    def play(self, request: RunRequest) -> RunReport:
        (request.run_dir / "output").mkdir(exist_ok=True)
        (request.run_dir / "output" / "half.safetensors").write_bytes(b"x")
        name, stopping = request.competitor.name, self.stop is not None
        if request.run_id < 0:
            return self.until_stopped(request) if stopping else _succeeded(request)
        if request.stage == Stage.KNOCKOUT and name == "a":
            return RunReport(RunStatus.FAILED, 0.0, 0.1, failure_reason="crashed")
        if stopping and request.stage == Stage.KNOCKOUT:
            assert self.early_started.wait(WAIT_SECONDS)
            if self.at == "boss":
                return _succeeded(request)
        if stopping and not self.stop.is_set():  # b's final (at "final"), or the first boss run claimed (at "boss")
            self.stop.set()
            self.stopper()
            return self.until_stopped(request)
        return _succeeded(request)


def _tournament(store: Store) -> int:
    with store.transaction() as session:
        add_competitors(session, "a", "b", CHAMPION)
        return create_tournament(session, name="t", kind="text", seed=3, entrants=["a", "b"], champion=CHAMPION).id


def _drive(store: Store, settings: Settings, tid: int, executor: StoppedWithEarlyRuns):
    return drive(store, tid, task_source=task_source, executor=executor, rules=settings.rules, weight_rules=settings.weights,
                 work_dir=settings.work_dir, parallel=2, lease_rules=LeaseRules(lease_seconds=5.0, heartbeat_seconds=0.1))


def _attempts(store: Store, tid: int) -> dict[tuple[str, int, str], list[tuple[int, str]]]:
    with store.session() as session:
        return {(run.task.match.match_id, run.task.index, run.competitor.name): [(a.number, a.status) for a in run.attempt_records]
                for run in tournament_runs(session, tid)}


def _folder(settings: Settings, tid: int, run: tuple[str, int, str], attempt: int, store: Store) -> Path:
    with store.session() as session:
        run_id = next(r.id for r in tournament_runs(session, tid) if (r.task.match.match_id, r.task.index, r.competitor.name) == run)
    return settings.work_dir / f"tournament-{tid}" / f"run-{run_id}" / f"attempt-{attempt}"


@pytest.mark.parametrize("how", ["signal", "cancel"])
def test_a_drive_stopped_at_once_removes_its_early_runs_folders(store: Store, settings: Settings, sigterm_handler, how: str) -> None:
    tid = _tournament(store)
    executor = StoppedWithEarlyRuns(stop=threading.Event())
    if how == "signal":
        executor.stopper = lambda: signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGUSR1)
    else:
        def cancel() -> None:  # as the operator would, from another process
            cancel_tournament(store, settings, tid, "wrong entrants")

        executor.stopper = cancel
    with pytest.raises(DriverStopped if how == "signal" else TournamentCancelled):
        _drive(store, settings, tid, executor)
    early = [r for r in executor.runs if r.run_id < 0]
    assert early and all(r.run_dir.is_relative_to(settings.work_dir / f"tournament-{tid}" / "early") for r in early)
    assert not (settings.work_dir / f"tournament-{tid}" / "early").exists()
    attempts = _attempts(store, tid)
    assert attempts[("r1-k001", 0, "b")] == [(1, AttemptStatus.WITHDRAWN)]
    final = _folder(settings, tid, ("r1-k001", 0, "b"), 1, store)
    assert (final / "logs" / "stdout.log").is_file() and not (final / "output").exists()  # a stored run's logs stay
    assert {match for match, _index, _name in attempts} == {"r1-k001"}  # no boss round: nothing of the early runs stored
    if how == "signal":  # resumed: played to its end, each run once
        assert _drive(store, settings, tid, StoppedWithEarlyRuns()).champion == "b"
        attempts = _attempts(store, tid)
        assert attempts[("r1-k001", 0, "b")] == [(1, AttemptStatus.WITHDRAWN), (2, RunStatus.SUCCEEDED)]
        assert all(statuses == [(1, RunStatus.SUCCEEDED)] for run, statuses in attempts.items() if run[0] == "boss")
        assert not (settings.work_dir / f"tournament-{tid}" / "early").exists()


def test_an_adopted_early_run_stopped_keeps_its_logs_in_its_runs_folder(store: Store, settings: Settings, sigterm_handler) -> None:
    tid = _tournament(store)
    executor = StoppedWithEarlyRuns(stop=threading.Event(), at="boss")
    executor.stopper = lambda: signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGUSR1)
    with pytest.raises(DriverStopped):
        _drive(store, settings, tid, executor)
    [early] = [r for r in executor.runs if r.run_id < 0]  # the slot trained it until the stop
    assert not (settings.work_dir / f"tournament-{tid}" / "early").exists()
    adopted = (early.match_id, early.task_index, early.competitor.name)
    attempts = _attempts(store, tid)
    assert attempts[adopted] == [(1, AttemptStatus.WITHDRAWN)]  # adopted by the boss round's claim, then withdrawn
    folder = _folder(settings, tid, adopted, 1, store)
    assert (folder / "logs" / "stdout.log").read_text() == f"{early.run_name}\n"  # moved from early/, as a stored run's
    assert not (folder / "output").exists()  # withdrawn: nothing of it is kept but its logs

    assert _drive(store, settings, tid, StoppedWithEarlyRuns()).champion == "b"
    assert _attempts(store, tid)[adopted] == [(1, AttemptStatus.WITHDRAWN), (2, RunStatus.SUCCEEDED)]
