"""A driver stopped on purpose (SIGINT or SIGTERM, handled: ``runs.DriverStopped``) kills its runs at
once, records their attempts as withdrawn, which cost the competitor no try (or, when the store does
not take that, leaves a note from which the next drive withdraws them), and releases its lease;
a driver leaving at once (a second signal, or its clean-up too long) leaves that note before it exits;
a run left by a killed driver (no handler ran) is still interrupted and counts, and ``max_attempts``
still fails a run interrupted that often. A driver whose tournament the operator cancels stops the
same way, storing nothing after the cancellation."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from trainarena.contract import Direction, RunStatus, TaskType
from trainarena.engine.model import Stage
from trainarena.execution.supervise import STOPPED_REASON, StopAtOnce, current_stop_event
from trainarena.operations.cancelling import CancelledTournament, cancel_tournament
from trainarena.orchestrator import create_tournament, drive
from trainarena.records.recorder import Recorder
from trainarena.runs import DiskFull, DriverStopped, ProgressEvent, RunReport, RunRequest
from trainarena.settings import LeaseRules, Settings
from trainarena.stopped_attempts import WithdrawalNotes, leave_note
from trainarena.store import (
    AttemptStatus,
    RunAttempt,
    Store,
    TournamentStatus,
    add_competitor,
    get_tournament,
    tournament_runs,
)
from trainarena.store.leases import DriverIdentity, lease_holder
from trainarena.store.log_tables import LogEntry
from trainarena.store.tournaments import TournamentCancelled
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


def _tournament(store: Store) -> int:
    with store.transaction() as session:
        for name in NAMES:
            add_competitor(session, name=name, repo_url=f"https://example.org/{name}.git", commit="f" * 40,
                           tree_hash=f"tree-{name}", source_digest=f"digest-{name}", entrypoint="train.py")
        return create_tournament(session, name="t1", kind="text", seed=11, entrants=NAMES).id


def drive_tournament(store: Store, settings: Settings, tid: int, executor, **kwargs):
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
            drive_tournament(store, settings, tid, executor, parallel=parallel)
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
    events: list[ProgressEvent] = []
    finished = drive_tournament(store, settings, tid, Scores(), progress=events.append)
    assert finished is not None and finished.champion == "a"
    _, status, attempts = _b_run(store, tid)
    assert status == RunStatus.SUCCEEDED
    assert [(n, s) for n, s, _ in attempts] == [(1, "withdrawn"), (2, "withdrawn"), (3, "withdrawn"), (4, "succeeded")]
    # The drive taking it up says b's run was cut short: it said "none cut short", counting only the
    # tries it recovered itself, not those a stopped driver had withdrawn.
    [resumed] = [event for event in events if event.kind == "resumed"]
    assert resumed.runs_interrupted == 1 and resumed.runs_total == 1


def test_a_withdrawal_the_store_did_not_take_is_done_by_the_next_drive(store: Store, settings: Settings, sigterm_handler,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The stopped driver's withdrawal write fails (the store unreachable): its attempt stays running, and
    the next drive's recovery withdraws it from the note it left, rather than interrupting it (a try)."""
    tid = _tournament(store)
    notes = settings.work_dir / f"tournament-{tid}"

    def unreachable(*_args: object) -> list[tuple[int, int]]:
        raise OperationalError("UPDATE run_attempt", {}, OSError("the store is unreachable"))

    with monkeypatch.context() as patched:
        patched.setattr("trainarena.stopped_attempts.withdraw_own_attempts", unreachable)
        for stop in range(1, 4):  # more than max_attempts (2): stopped, it costs no try however often
            with pytest.raises(DriverStopped):
                drive_tournament(store, settings, tid, StoppedWhileTraining(), parallel=1)
            _, status, attempts = _b_run(store, tid)
            assert status == RunStatus.RUNNING and [(n, s) for n, s, _ in attempts] == [
                *((n, "withdrawn") for n in range(1, stop)), (stop, "running")]  # the last left running
            assert len(list(notes.glob("withdrawal-*.json"))) == 1  # the earlier ones' read by the drive after
    assert drive_tournament(store, settings, tid, Scores()).champion == "a"
    _, status, attempts = _b_run(store, tid)
    assert status == RunStatus.SUCCEEDED
    assert [(n, s) for n, s, _ in attempts] == [(1, "withdrawn"), (2, "withdrawn"), (3, "withdrawn"), (4, "succeeded")]
    assert all(reason == f"withdrawn: its driver ({socket.gethostname()} pid {os.getpid()}) was stopped by SIGTERM"
               for _, _, reason in attempts[:3])  # as the stopped driver would have written it
    assert not list(notes.glob("withdrawal-*.json"))


def test_a_note_withdraws_only_its_drivers_attempts_started_before_it(tmp_path: Path) -> None:
    me = DriverIdentity("owner", "host-a", 41)
    before = datetime.now(UTC) - timedelta(seconds=5)
    leave_note(tmp_path, me, "withdrawn: stopped")
    (tmp_path / "withdrawal-garbled.json").write_text("{")  # a note cut short: says nothing, removed with the others
    notes = WithdrawalNotes.read(tmp_path)

    def attempt(host: str, pid: int, started_at: datetime) -> RunAttempt:
        return RunAttempt(number=1, status=AttemptStatus.RUNNING, started_at=started_at, driver_host=host, driver_pid=pid)

    assert notes.reason_for(attempt("host-a", 41, before)) == "withdrawn: stopped"
    assert notes.reason_for(attempt("host-a", 42, before)) is None  # another driver's: interrupted
    assert notes.reason_for(attempt("host-b", 41, before)) is None
    assert notes.reason_for(attempt("host-a", 41, datetime.now(UTC) + timedelta(seconds=5))) is None  # a later pid's reuse
    notes.remove()
    assert not list(tmp_path.iterdir())


def _wait_for(marker: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert process.poll() is None and time.monotonic() < deadline, f"no {marker.name} from the driver"
        time.sleep(0.02)


@pytest.mark.parametrize("leaving", ["a-second-signal", "a-clean-up-too-long"])
def test_a_driver_leaving_at_once_leaves_its_withdrawal_to_the_next_drive(store: Store, settings: Settings, tmp_path: Path,
                                                                          leaving: str) -> None:
    """`tournament run` stopped by SIGTERM, then, its clean-up held up (the store not answering), by
    SIGINT or its clean-up's time limit, exits at once (130, or 143), leaving the note of its
    withdrawal (no database call): the next drive withdraws its attempt, costing b no try."""
    tid = _tournament(store)
    markers = tmp_path / "markers"
    markers.mkdir()
    environment = {**os.environ, "TRAINARENA_DATA_DIR": str(settings.data_dir),
                   "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    clean_up_seconds = "600" if leaving == "a-second-signal" else "2"
    driver = subprocess.Popen([sys.executable, str(Path(__file__).parent / "signalled_driver.py"), str(tid), str(markers),
                               clean_up_seconds], env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        _wait_for(markers / "training", driver)
        driver.send_signal(signal.SIGTERM)
        if leaving == "a-second-signal":
            _wait_for(markers / "withdrawing", driver)  # its withdrawal does not answer
            driver.send_signal(signal.SIGINT)
        _, said = driver.communicate(timeout=30)
    finally:
        driver.kill()
        driver.wait()
    assert driver.returncode == (130 if leaving == "a-second-signal" else 143), said
    run_id, status, attempts = _b_run(store, tid)
    assert status == RunStatus.RUNNING and [(n, s) for n, s, _ in attempts] == [(1, "running")]
    [note] = (settings.work_dir / f"tournament-{tid}").glob("withdrawal-*.json")
    assert drive_tournament(store, settings, tid, Scores()).champion == "a"
    _, status, attempts = _b_run(store, tid)
    assert status == RunStatus.SUCCEEDED and [(n, s) for n, s, _ in attempts] == [(1, "withdrawn"), (2, "succeeded")]
    how = "SIGTERM, then SIGINT" if leaving == "a-second-signal" else "SIGTERM, its clean-up cut short after 2 s"
    assert attempts[0][2] == f"withdrawn: its driver ({socket.gethostname()} pid {driver.pid}) was stopped by {how}"
    assert not note.exists()


class FullDisk(Scores):
    def execute(self, request: RunRequest) -> RunReport:
        if request.competitor.name == "b":
            raise DiskFull("run x not counted: the data directory's disk is full: /data has 0.0 MB free; free space and run again")
        return super().execute(request)


def test_a_full_disk_stops_the_drive_and_costs_no_try(store: Store, settings: Settings) -> None:
    tid = _tournament(store)
    for _ in range(3):
        with pytest.raises(DiskFull, match="disk is full"):
            drive_tournament(store, settings, tid, FullDisk())
        _, status, attempts = _b_run(store, tid)
        assert status == RunStatus.PENDING and attempts == []  # withdrawn: as if never claimed
        with store.session() as session:
            assert lease_holder(session, tid) is None
    assert drive_tournament(store, settings, tid, Scores()) is not None
    assert _b_run(store, tid)[1] == RunStatus.SUCCEEDED


class CancelledWhileTraining(Scores):
    """The first run cancels its tournament (as the operator would, from another process) once each
    slot's run started, then returns its report (``first_returns``: finished after the cancellation) or
    trains on until stopped; every other run trains until stopped."""

    def __init__(self, store: Store, settings: Settings, tid: int, parallel: int, first_returns: bool) -> None:
        self.store, self.settings, self.tid, self.parallel, self.first_returns = store, settings, tid, parallel, first_returns
        self.lock = threading.Lock()
        self.calls = 0
        self.all_started = threading.Event()
        self.seen: list[tuple[bool, bool]] = []  # (stopped, at once) as each run trained until stopped saw its stop

    def execute(self, request: RunRequest) -> RunReport:
        with self.lock:
            self.calls += 1
            call = self.calls
        if call == self.parallel:
            self.all_started.set()
        (request.run_dir / "output").mkdir(parents=True, exist_ok=True)
        (request.run_dir / "output" / "half.safetensors").write_bytes(b"x")
        if call == 1:
            assert self.all_started.wait(10)
            cancel_tournament(self.store, self.settings, self.tid, "wrong entrants")
            if self.first_returns:
                return super().execute(request)
        stop, deadline = current_stop_event(), time.monotonic() + 30
        while (stop is None or not stop.is_set()) and time.monotonic() < deadline:
            time.sleep(0.01)
        with self.lock:
            self.seen.append((stop is not None and stop.is_set(), isinstance(stop, StopAtOnce) and stop.at_once()))
        return RunReport(RunStatus.FAILED, 0.0, 1.0, failure_reason=STOPPED_REASON)


@pytest.mark.parametrize(("parallel", "first_returns"), [(2, True), (1, True), (1, False)],
                         ids=["a-run-finishing-after-it-stops-the-other", "a-run-finishing-after-it", "the-heartbeat-finds-it"])
def test_a_cancelled_tournaments_driver_stops_its_runs_and_stores_nothing_after(
        store: Store, settings: Settings, parallel: int, first_returns: bool) -> None:
    tid = _tournament(store)
    executor = CancelledWhileTraining(store, settings, tid, parallel, first_returns)
    started = time.monotonic()
    with pytest.raises(TournamentCancelled, match=r"^tournament 't1' was cancelled: wrong entrants \(after it started: its records stay\); nothing more of it is played$"):
        drive_tournament(store, settings, tid, executor, parallel=parallel, recorder=Recorder(settings),
               lease_rules=LeaseRules(lease_seconds=5.0, heartbeat_seconds=0.1))
    # The runs still training were killed at once, not left to their budget.
    assert executor.seen == [(True, True)] * (parallel - first_returns) and time.monotonic() - started < 10
    with store.session() as session:
        assert lease_holder(session, tid) is None
        runs = tournament_runs(session, tid)
        assert len(runs) == 2 and all(run.counted_attempt is None for run in runs)  # no result stored
        claimed = [(run, attempt) for run in runs for attempt in run.attempt_records]
        assert len(claimed) == parallel
        for run, attempt in claimed:
            assert run.status == RunStatus.PENDING and attempt.status == "withdrawn"
            assert attempt.failure_reason == "withdrawn: its tournament was cancelled while it ran"
            folder = settings.work_dir / f"tournament-{tid}" / f"run-{run.id}" / f"attempt-{attempt.number}"
            assert not (folder / "output").exists()
        logged = session.scalars(select(LogEntry.kind).where(LogEntry.tournament_id == tid).order_by(LogEntry.index))
        assert list(logged) == ["commitment", "cancellation"]  # no run statement after (nor before) it
    with pytest.raises(TournamentCancelled):
        drive_tournament(store, settings, tid, Scores())


def _waiting_on_a_row_lock(store: Store) -> bool:
    """Whether another session of this PostgreSQL database waits on a lock (pg_stat_activity)."""
    with store.engine.connect() as connection:
        return bool(connection.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")))


class CancelDuringAStep:
    """The drive's progress callback: on ``round_created`` (said inside the write step that creates the
    round, its transaction open) it cancels the tournament from another thread, as the operator would,
    and returns (the step commits) only once that cancellation is seen waiting."""

    def __init__(self, store: Store, settings: Settings, tid: int) -> None:
        self.store, self.settings, self.tid = store, settings, tid
        self.cancelled: list[CancelledTournament] = []
        self.thread = threading.Thread(target=self._cancel)
        self.waited = False  # the cancel was still waiting while the step held the tournament

    def _cancel(self) -> None:
        self.cancelled.append(cancel_tournament(self.store, self.settings, self.tid, "wrong pool"))

    def __call__(self, event: ProgressEvent) -> None:
        if event.kind != "round_created" or self.thread.ident is not None:  # once
            return
        self.thread.start()
        if self.store.engine.dialect.name == "postgresql":  # seen waiting on the row lock, not merely slow
            deadline = time.monotonic() + 10
            while not _waiting_on_a_row_lock(self.store) and time.monotonic() < deadline:
                time.sleep(0.02)
            self.waited = _waiting_on_a_row_lock(self.store) and self.thread.is_alive()
        else:  # SQLite's busy wait for the write lock shows nowhere: it has not returned meanwhile
            self.thread.join(1.0)
            self.waited = self.thread.is_alive()


class AfterTheCancel(Scores):
    """Every run returns once the cancellation committed: the write step storing it starts after."""

    def __init__(self, cancel: CancelDuringAStep) -> None:
        self.cancel = cancel

    def execute(self, request: RunRequest) -> RunReport:
        self.cancel.thread.join(30)
        return super().execute(request)


def test_a_cancel_waits_for_the_write_step_under_way_and_the_next_step_refuses(store: Store, settings: Settings) -> None:
    """The row lock each write step takes on its tournament (SELECT ... FOR UPDATE on PostgreSQL) orders a
    cancellation after the step under way: the cancel sees what the step stored (its round: the
    tournament started, so nothing is released and its end is signed after the commitment), and every
    step after it refuses."""
    tid = _tournament(store)
    cancel = CancelDuringAStep(store, settings, tid)
    with pytest.raises(TournamentCancelled, match=r"^tournament 't1' was cancelled: wrong pool \("):
        drive_tournament(store, settings, tid, AfterTheCancel(cancel), progress=cancel, recorder=Recorder(settings))
    cancel.thread.join(30)
    assert cancel.waited
    assert [(c.released, c.reason) for c in cancel.cancelled] == [(False, "cancelled: wrong pool (after it started: its records stay)")]
    with store.session() as session:
        tournament = get_tournament(session, tid)
        assert tournament.status == TournamentStatus.CANCELLED and len(tournament.rounds) == 1
        assert [e.competitor.name for e in tournament.entrants] == NAMES  # kept: its round names them
        assert all(run.counted_attempt is None for run in tournament_runs(session, tid))  # nothing stored after
        logged = session.scalars(select(LogEntry.kind).where(LogEntry.tournament_id == tid).order_by(LogEntry.index))
        assert list(logged) == ["commitment", "cancellation"]
