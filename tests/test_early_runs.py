"""Early runs (early_runs, engine.lookahead): a slot with no run of the open round left trains the runs of
the round foreseen after it; the round's claim adopts them, so each is stored once, in its own run
folder, exactly as a run trained after its round was created; runs the tournament turns out not to
need are dropped unstored; a driver that dies with early runs resumes as usual."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from early_run_executors import CHAMPION, WAIT_SECONDS, RecordingExecutor, add_competitors, succeeded, task_source
from trainarena.contract import RunStatus
from trainarena.early_runs import EarlyRuns
from trainarena.engine.bracket import plan_knockout_round
from trainarena.engine.model import Stage
from trainarena.execution.supervise import deadline_reached
from trainarena.operations.cancelling import cancel_tournament
from trainarena.orchestrator import create_tournament, drive
from trainarena.runs import TIMINGS_FILE, RunNotStarted, RunReport, RunRequest
from trainarena.settings import Settings
from trainarena.store import AttemptStatus, Store, StoreError, get_competitor, get_tournament, tournament_runs
from trainarena.store.tournaments import TournamentCancelled
from trainarena.tasks.base import TaskDefinition


@dataclass
class Final(RecordingExecutor):
    """A final between ``a`` and ``b`` before a boss round against ``king``: ``a`` fails at once, ``b``'s
    final run lasts until an early run started on the other slot, then ends as ``b_final`` says."""

    b_final: Callable[[], RunReport] = lambda: succeeded(1.0)
    waits_for_early: bool = True  # False with one slot, where no run is trained early
    early_trains_until_stopped: bool = False

    def play(self, request: RunRequest) -> RunReport:
        name = request.competitor.name
        if request.stage == Stage.KNOCKOUT and name == "a":
            return RunReport(RunStatus.FAILED, 0.0, 0.1, failure_reason="crashed")
        if request.stage == Stage.KNOCKOUT and name == "b":
            if self.waits_for_early:
                self.early_started.wait(WAIT_SECONDS)
            return self.b_final()
        if request.run_id < 0 and self.early_trains_until_stopped:
            return self.until_stopped(request)
        return succeeded(1.0 if name == "b" else 2.0, log_path=request.run_dir / "logs")


def _platform_breaks() -> RunReport:
    raise RuntimeError("the platform broke under b's final")


@pytest.fixture(autouse=True)
def _competitors(store: Store) -> None:
    with store.transaction() as session:
        add_competitors(session, "a", "b", CHAMPION)


def _tournament(store: Store, name: str) -> int:
    with store.transaction() as session:
        return create_tournament(session, name=name, kind="text", seed=3, entrants=["a", "b"], champion=CHAMPION).id


def _drive(store: Store, settings: Settings, tournament_id: int, executor, parallel: int):
    return drive(store, tournament_id, task_source=task_source, executor=executor, rules=settings.rules,
                 weight_rules=settings.weights, work_dir=settings.work_dir, parallel=parallel)


def _stored(store: Store, tournament_id: int) -> list[tuple]:
    with store.session() as session:
        return [(r.task.match.match_id, r.task.index, r.competitor.name, r.status,
                 None if r.evaluation is None else r.evaluation.score, [a.status for a in r.attempt_records])
                for r in tournament_runs(session, tournament_id)]


def test_the_boss_round_is_trained_early_and_stored_as_if_trained_after_the_final(store: Store, settings: Settings) -> None:
    one_slot, two_slots = Final(waits_for_early=False), Final()
    alone = _tournament(store, "one-slot")
    assert _drive(store, settings, alone, one_slot, parallel=1).champion == "b"
    early = _tournament(store, "two-slots")
    assert _drive(store, settings, early, two_slots, parallel=2).champion == "b"

    assert [r for r in two_slots.runs if r.run_id < 0], "no run was trained early"
    assert not [r for r in one_slot.runs if r.run_id < 0]
    assert len(two_slots.runs) == len(one_slot.runs) == 2 + 2 * settings.rules.boss_tasks_text  # none trained twice
    assert _stored(store, early) == _stored(store, alone)  # the same runs, outcomes and attempts
    with store.session() as session:
        tournament = get_tournament(session, early)
        for run in tournament_runs(session, early):
            folder = settings.work_dir / f"tournament-{early}" / f"run-{run.id}" / "attempt-1"
            assert (folder / TIMINGS_FILE).is_file()  # the slot's timings, written where the run is stored
            if run.task.match.match_id == "boss":  # the log the script wrote is where the attempt says
                assert Path(run.counted_attempt.log_path) == folder / "logs"
                assert (folder / "logs" / "stdout.log").read_text() == f"{tournament.name}-{run.task.match.match_id}-t{run.task.index}-{run.competitor.name}-try1\n"
    assert not (settings.work_dir / f"tournament-{early}" / "early").exists()


def test_early_runs_the_tournament_does_not_need_are_never_stored(store: Store, settings: Settings) -> None:
    # b's final fails too: nobody challenges, the champion keeps the title, and no boss round is played.
    executor = Final(b_final=lambda: RunReport(RunStatus.FAILED, 0.0, 1.0, failure_reason="crashed"))
    tournament_id = _tournament(store, "t")
    finished = _drive(store, settings, tournament_id, executor, parallel=2)
    assert finished.champion == CHAMPION and not finished.crowned
    assert [r for r in executor.runs if r.run_id < 0 and r.stage == Stage.BOSS], "the boss round was not trained early"
    assert [(match, name) for match, _i, name, *_ in _stored(store, tournament_id)] == [("r1-k001", "a"), ("r1-k001", "b")] \
        or [(match, name) for match, _i, name, *_ in _stored(store, tournament_id)] == [("r1-k001", "b"), ("r1-k001", "a")]
    assert not (settings.work_dir / f"tournament-{tournament_id}" / "early").exists()


def test_an_early_run_the_tournament_does_not_need_is_stopped(store: Store, settings: Settings) -> None:
    executor = Final(b_final=lambda: RunReport(RunStatus.FAILED, 0.0, 1.0, failure_reason="crashed"),
                     early_trains_until_stopped=True)
    tournament_id = _tournament(store, "t")
    started = time.monotonic()
    assert _drive(store, settings, tournament_id, executor, parallel=2).champion == CHAMPION
    assert time.monotonic() - started < WAIT_SECONDS  # the drive did not wait for the script to end by itself
    early = [r for r in executor.runs if r.run_id < 0]
    assert early and executor.stopped == early
    assert len(_stored(store, tournament_id)) == 2


def test_a_driver_that_dies_with_early_runs_resumes_and_stores_each_run_once(store: Store, settings: Settings) -> None:
    tournament_id = _tournament(store, "t")
    dying = Final(b_final=_platform_breaks)
    with pytest.raises(RuntimeError, match="platform broke"):
        _drive(store, settings, tournament_id, dying, parallel=2)
    assert [r for r in dying.runs if r.run_id < 0], "no run was trained early before the driver died"
    assert not (settings.work_dir / f"tournament-{tournament_id}" / "early").exists()

    resumed = Final()
    assert _drive(store, settings, tournament_id, resumed, parallel=2).champion == "b"
    assert "a" not in {r.competitor.name for r in resumed.runs}  # its stored final is not run again
    attempts = {(match, name): statuses for match, _i, name, _status, _score, statuses in _stored(store, tournament_id)}
    assert attempts[("r1-k001", "b")] == [AttemptStatus.INTERRUPTED, RunStatus.SUCCEEDED]
    assert all(statuses == [RunStatus.SUCCEEDED] for (match, _name), statuses in attempts.items() if match.startswith("boss"))
    assert len([r for r in resumed.runs if r.stage == Stage.BOSS]) == 2 * settings.rules.boss_tasks_text


def test_early_runs_a_driver_killed_outright_left_behind_are_cleared_before_the_next_drive(store: Store,
                                                                                         settings: Settings) -> None:
    tournament_id = _tournament(store, "t")
    dying = Final(b_final=_platform_breaks)
    with pytest.raises(RuntimeError, match="platform broke"):
        _drive(store, settings, tournament_id, dying, parallel=2)
    early_dirs = [r.run_dir for r in dying.runs if r.run_id < 0]
    assert early_dirs
    for folder in early_dirs:  # as a SIGKILL leaves them: the drive's clean-up never ran
        (folder / "output").mkdir(parents=True)
        (folder / "output" / "model.safetensors").write_text("the killed driver's artifact")

    @dataclass
    class StartsClean(Final):
        def execute(self, request: RunRequest) -> RunReport:
            assert request.run_id > 0 or not (request.run_dir / "output").exists(), f"{request.run_dir} holds a stale output"
            return super().execute(request)

    resumed = StartsClean()
    assert _drive(store, settings, tournament_id, resumed, parallel=2).champion == "b"
    assert [r for r in resumed.runs if r.run_id < 0], "no run was trained early on resume"


def test_a_drive_that_fails_stops_its_early_runs_at_once_rather_than_waiting_for_them(store: Store,
                                                                                      settings: Settings) -> None:
    dying = Final(b_final=_platform_breaks, early_trains_until_stopped=True)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="platform broke"):
        _drive(store, settings, _tournament(store, "t"), dying, parallel=2)
    assert dying.stopped, "the early run was not told to stop"
    assert time.monotonic() - started < WAIT_SECONDS / 2  # not held until the early run ends by itself


@dataclass
class CrashOnCall(Final):
    """``Final`` (b's final lasts until an early run started), raising on call ``crash_on_call`` (which
    also ends b's wait: after a crash no run starts early)."""

    crash_on_call: int | None = None
    calls: int = 0
    crashed: RunRequest | None = None

    def execute(self, request: RunRequest) -> RunReport:
        with self.lock:
            self.calls += 1
            call = self.calls
        if call == self.crash_on_call:
            self.crashed = request
            self.early_started.set()
            raise RuntimeError(f"the platform died on call {call}")
        return super().execute(request)


def test_a_crash_at_any_call_with_early_runs_resumes_to_the_same_tournament(store: Store, settings: Settings) -> None:
    clean, played = _tournament(store, "clean"), CrashOnCall()
    _drive(store, settings, clean, played, parallel=2)
    assert [r for r in played.runs if r.run_id < 0]
    expected = [(match, index, name, status, score) for match, index, name, status, score, _ in _stored(store, clean)]
    crashed_early = False
    for crash_at in range(1, 2 + 2 * settings.rules.boss_tasks_text + 1):
        tournament_id = _tournament(store, f"crash-{crash_at}")
        dying = CrashOnCall(crash_on_call=crash_at)
        with pytest.raises(RuntimeError, match="platform died"):
            _drive(store, settings, tournament_id, dying, parallel=2)
        crashed_early |= dying.crashed is not None and dying.crashed.run_id < 0
        stored_before = {(match, index, name) for match, index, name, status, *_ in _stored(store, tournament_id)
                         if status != RunStatus.PENDING and status != RunStatus.RUNNING}
        resumed = CrashOnCall()
        assert _drive(store, settings, tournament_id, resumed, parallel=2).champion == "b"
        runs = _stored(store, tournament_id)
        assert [(match, index, name, status, score) for match, index, name, status, score, _ in runs] == expected
        assert not stored_before & {(r.match_id, r.task_index, r.competitor.name) for r in resumed.runs}
        for *_, attempts in runs:  # stored once: at most the attempt the crash interrupted, then the counted one
            assert attempts in ([RunStatus.SUCCEEDED], [RunStatus.FAILED], [AttemptStatus.INTERRUPTED, RunStatus.SUCCEEDED],
                                [AttemptStatus.INTERRUPTED, RunStatus.FAILED])
        assert not (settings.work_dir / f"tournament-{tournament_id}" / "early").exists()
    assert crashed_early, "no crash hit a run trained early"


@dataclass
class _Scoring:
    score: Callable[[], RunReport]

    def finish(self) -> RunReport:
        return self.score()


@dataclass
class ScoredFinal(Final):
    """``Final`` on a staged executor: b's final script is done at once, so its slot trains early too,
    and its artifact then fails its evaluation once both slots train the boss round early."""

    both_early: threading.Event = field(default_factory=threading.Event)
    # Counted under a lock: the two early runs start on two slots at once, and a count read from the
    # recorded runs could miss the second (both read it before either was recorded).
    early_count: int = 0
    early_lock: threading.Lock = field(default_factory=threading.Lock)

    def train(self, request: RunRequest) -> RunReport | _Scoring:
        if request.stage == Stage.KNOCKOUT and request.competitor.name == "b":
            self.record(request)

            def fails_once_both_slots_train_early() -> RunReport:
                self.both_early.wait(WAIT_SECONDS)
                return RunReport(RunStatus.FAILED, 0.0, 1.0, failure_reason="its artifact failed evaluation")

            return _Scoring(fails_once_both_slots_train_early)
        if request.run_id < 0:
            with self.early_lock:
                self.early_count += 1
                if self.early_count == 2:
                    self.both_early.set()  # the second early run starts now
        return self.execute(request)


def test_early_runs_a_stored_failure_rules_out_are_stopped_while_every_slot_trains_them(store: Store,
                                                                                         settings: Settings) -> None:
    executor = ScoredFinal(waits_for_early=False, early_trains_until_stopped=True)
    tournament_id = _tournament(store, "t")
    started = time.monotonic()
    assert _drive(store, settings, tournament_id, executor, parallel=2).champion == CHAMPION
    early = [r for r in executor.runs if r.run_id < 0]
    assert len(early) == 2 and executor.both_early.is_set()
    # Stopped when b's failed evaluation was stored, not when a script ended by itself (no slot was free).
    assert sorted(r.run_id for r in executor.stopped) == sorted(r.run_id for r in early)
    assert time.monotonic() - started < WAIT_SECONDS
    assert len(_stored(store, tournament_id)) == 2


def test_a_driver_clears_only_its_own_early_runs_at_its_end_and_all_left_behind_at_its_start(tmp_path: Path) -> None:
    """A driver that lost its lease (a stalled heartbeat) trains on; at its end it must not remove the
    early runs of the driver that took over, whose adopted runs would then find no output."""
    lost, successor = EarlyRuns(tmp_path), EarlyRuns(tmp_path)
    early = tmp_path / "tournament-7" / "early"
    for driver in (lost, successor):
        (early / driver.owner / "r2-k001-t0-a" / "attempt-1" / "output").mkdir(parents=True)
    lost.clear(7)
    assert not (early / lost.owner).exists() and (early / successor.owner / "r2-k001-t0-a" / "attempt-1" / "output").is_dir()
    successor.clear(7)
    assert not early.exists()  # the last one out removes early/ itself
    (early / lost.owner / "r2-k001-t0-a").mkdir(parents=True)  # a driver killed outright left this
    EarlyRuns(tmp_path).clear_left_behind(7)
    assert not early.exists()


@dataclass
class YieldsAfterTheFinal(Final):
    """``Final``, and the caller asks the drive to yield once b's final is done (serve's stop)."""

    other_work_due: threading.Event = field(default_factory=threading.Event)

    def execute(self, request: RunRequest) -> RunReport:
        report = super().execute(request)
        if request.stage == Stage.KNOCKOUT and request.competitor.name == "b":
            self.other_work_due.set()
        return report


def test_a_drive_yields_when_other_work_is_due_and_the_next_one_finishes_the_same_tournament(store: Store,
                                                                                          settings: Settings) -> None:
    """serve drives with ``until`` (not batches of runs): slots and early runs as in any drive, and when
    it is asked to yield (serve: a stop) the runs in flight are stored, early ones dropped, and it yields."""
    alone = _tournament(store, "one-slot")
    assert _drive(store, settings, alone, Final(waits_for_early=False), parallel=1).champion == "b"
    tournament_id = _tournament(store, "yields")
    executor = YieldsAfterTheFinal(early_trains_until_stopped=True)
    assert drive(store, tournament_id, task_source=task_source, executor=executor, rules=settings.rules,
                 weight_rules=settings.weights, work_dir=settings.work_dir, parallel=2,
                 until=executor.other_work_due.is_set) is None
    early = [r for r in executor.runs if r.run_id < 0]
    assert early and executor.stopped == early  # trained on the free slot, stopped when the drive yielded
    assert [(match, name) for match, _i, name, *_ in _stored(store, tournament_id)] in (
        [("r1-k001", "a"), ("r1-k001", "b")], [("r1-k001", "b"), ("r1-k001", "a")])  # nothing of the boss round
    assert not (settings.work_dir / f"tournament-{tournament_id}" / "early").exists()

    assert _drive(store, settings, tournament_id, Final(), parallel=2).champion == "b"
    assert _stored(store, tournament_id) == _stored(store, alone)


@dataclass
class ByeAndDeadline(RecordingExecutor):
    """Three entrants, ``c`` with the bye: in the pair ``a`` fails at once and ``b``'s script reaches its
    deadline once ``b_deadline`` says (told as the sandbox tells it), then ends timed out once ``ends_b``
    does (each waits WAIT_SECONDS at most). Every other run succeeds at once, or trains until
    stopped when early and ``early_trains_until_stopped``."""

    ends_b: Callable[[ByeAndDeadline], bool] = lambda _executor: True
    b_deadline: Callable[[ByeAndDeadline], bool] = lambda _executor: True
    early_trains_until_stopped: bool = False
    b_ended_at: int = 0  # how many runs had started when b's run ended

    def play(self, request: RunRequest) -> RunReport:
        name = request.competitor.name
        if request.stage == Stage.KNOCKOUT and name == "a":
            return RunReport(RunStatus.FAILED, 0.0, 0.1, failure_reason="crashed")
        if request.stage == Stage.KNOCKOUT and name == "b":
            for reached in (self.b_deadline, self.ends_b):
                until = time.monotonic() + WAIT_SECONDS
                while not reached(self) and time.monotonic() < until:
                    time.sleep(0.01)
                if reached is self.b_deadline:
                    deadline_reached()
            with self.lock:
                self.b_ended_at = len(self.runs)
            return RunReport(RunStatus.TIMED_OUT, 0.0, 1.0, failure_reason="timed out")
        if request.run_id < 0 and self.early_trains_until_stopped:
            return self.until_stopped(request)
        return succeeded(1.0 if name == "c" else 2.0)


def _bye_for_c(store: Store, settings: Settings, name: str) -> int:
    """A tournament of a, b and c whose knockout pairs a with b (c has the bye), against the champion."""
    seed = next(s for s in range(100) if plan_knockout_round(("a", "b", "c"), {}, s, 0, settings.rules).byes == ("c",))
    with store.transaction() as session:
        if get_competitor(session, "c") is None:
            add_competitors(session, "c")
        return create_tournament(session, name=name, kind="text", seed=seed, entrants=["a", "b", "c"], champion=CHAMPION).id


def _started_early(executor: ByeAndDeadline) -> list[tuple[str, str]]:
    return [(r.match_id, r.competitor.name) for r in executor.runs if r.run_id < 0]


def test_the_defenders_boss_runs_come_first_and_a_run_past_its_deadline_counts_as_failed(store: Store,
                                                                                          settings: Settings) -> None:
    """While b's run is in its grace period, certain to time out, the next round is c's boss round: a
    free slot trains the defender's boss runs first (needed whoever challenges), then c's, all adopted."""
    alone = _bye_for_c(store, settings, "one-slot")
    assert _drive(store, settings, alone, ByeAndDeadline(), parallel=1).champion == "c"
    c_boss = [("boss", "c")] * settings.rules.boss_tasks_text
    executor = ByeAndDeadline(ends_b=lambda e: _started_early(e)[-len(c_boss):] == c_boss)
    tournament_id = _bye_for_c(store, settings, "two-slots")
    started = time.monotonic()
    assert _drive(store, settings, tournament_id, executor, parallel=2).champion == "c"
    assert time.monotonic() - started < WAIT_SECONDS  # b did not wait for them in vain
    assert _started_early(executor) == [("boss", CHAMPION)] * settings.rules.boss_tasks_text + c_boss
    assert executor.b_ended_at == len(executor.runs)  # every boss run started before b's run ended
    assert _stored(store, tournament_id) == _stored(store, alone)  # adopted: the same runs, stored once


def test_early_runs_are_stopped_when_a_run_reaching_its_deadline_ends_the_tournament(store: Store,
                                                                                     settings: Settings) -> None:
    """In a pair with no bye, a failed, and b reaches its deadline while the defender's boss runs train
    early: nobody can challenge now, so they are stopped then, not when b's run ends."""

    @dataclass
    class PairOnly(ByeAndDeadline):
        def execute(self, request: RunRequest) -> RunReport:
            if request.competitor.name == "c":
                raise AssertionError("c does not play")
            return super().execute(request)

    executor = PairOnly(b_deadline=lambda e: bool(_started_early(e)), ends_b=lambda e: bool(e.stopped),
                        early_trains_until_stopped=True)
    started = time.monotonic()
    assert _drive(store, settings, _tournament(store, "t"), executor, parallel=2).champion == CHAMPION
    assert time.monotonic() - started < WAIT_SECONDS
    early = [r for r in executor.runs if r.run_id < 0]
    assert executor.stopped == early and {(r.match_id, r.competitor.name) for r in early} <= {("boss", CHAMPION)}


class BossTasksUnusable:
    """A task source whose boss tasks cannot be given once ``broken`` (a drawn task whose data changed:
    the pool source raises StoredTaskUnusable, a StoreError); ``asked`` once it refused one."""

    def __init__(self, broken: bool) -> None:
        self.broken, self.asked = threading.Event(), threading.Event()
        if broken:
            self.broken.set()

    def __call__(self, kind: str, stage: Stage, match_id: str, task_index: int, seed: int) -> TaskDefinition:
        if stage == Stage.BOSS and self.broken.is_set():
            self.asked.set()
            raise StoreError("stored task 'boss-0': its dataset changed since it was stored")
        return task_source(kind, stage, match_id, task_index, seed)


def test_a_task_the_look_ahead_cannot_name_trains_nothing_early_and_loses_no_run_in_flight(store: Store,
                                                                                         settings: Settings) -> None:
    """The look ahead asks for the boss round's tasks while b's final trains: refused, nothing is trained
    early, and b's final is stored when done; the drive stops where the boss round is made. Before, the
    refusal ended the drive at once: b's finished run was never stored, and the next drive counted it
    as an interrupted try."""
    source = BossTasksUnusable(broken=True)

    @dataclass
    class FinalAfterTheRefusal(Final):
        def execute(self, request: RunRequest) -> RunReport:
            if request.competitor.name == "b":
                source.asked.wait(WAIT_SECONDS)
            return super().execute(request)

    executor = FinalAfterTheRefusal(waits_for_early=False)
    tournament_id = _tournament(store, "t")
    with pytest.raises(StoreError, match="changed since it was stored"):
        drive(store, tournament_id, task_source=source, executor=executor, rules=settings.rules,
              weight_rules=settings.weights, work_dir=settings.work_dir, parallel=2)
    assert source.asked.is_set() and not [r for r in executor.runs if r.run_id < 0]
    assert sorted((name, status, attempts) for _match, _i, name, status, _score, attempts in _stored(store, tournament_id)) == [
        ("a", RunStatus.FAILED, [RunStatus.FAILED]), ("b", RunStatus.SUCCEEDED, [RunStatus.SUCCEEDED])]


def test_a_drive_whose_step_fails_stops_its_early_runs_at_once(store: Store, settings: Settings) -> None:
    """The boss round's tasks become unusable once it is trained early: its creation stops the drive,
    and the early runs no round will adopt are stopped then, not waited for until they end by themselves."""
    source = BossTasksUnusable(broken=False)

    @dataclass
    class BreaksOnceEarly(Final):
        def execute(self, request: RunRequest) -> RunReport:
            if request.run_id < 0:
                source.broken.set()
            return super().execute(request)

    executor = BreaksOnceEarly(early_trains_until_stopped=True)
    started = time.monotonic()
    with pytest.raises(StoreError, match="changed since it was stored"):
        drive(store, _tournament(store, "t"), task_source=source, executor=executor, rules=settings.rules,
              weight_rules=settings.weights, work_dir=settings.work_dir, parallel=2)
    early = [r for r in executor.runs if r.run_id < 0]
    assert early and sorted(r.run_id for r in executor.stopped) == sorted(r.run_id for r in early)
    assert time.monotonic() - started < WAIT_SECONDS


def test_a_cancelled_tournaments_early_runs_are_stopped_and_removed(store: Store, settings: Settings) -> None:
    """Cancelled while the defender's boss runs train early: they are killed, and their folders (an
    artifact each, in a real run) removed; no drive follows a cancellation to clear them."""
    tournament_id = _tournament(store, "t")

    @dataclass
    class CancelledDuringTheFinal(Final):
        def execute(self, request: RunRequest) -> RunReport:
            if request.competitor.name == "b" and request.run_id > 0:
                self.early_started.wait(WAIT_SECONDS)
                cancel_tournament(store, settings, tournament_id, "drawn from the wrong pool")
            return super().execute(request)

    executor = CancelledDuringTheFinal(early_trains_until_stopped=True)
    with pytest.raises(TournamentCancelled):
        _drive(store, settings, tournament_id, executor, parallel=2)
    early = [r for r in executor.runs if r.run_id < 0]
    assert early and executor.stopped == early
    assert not (settings.work_dir / f"tournament-{tournament_id}" / "early").exists()


@dataclass
class TwoRoundsToTheBoss(RecordingExecutor):
    """a, b, c and d play two knockout rounds before the boss round; d's first-round run lasts until
    a run started early (``slow_d``), so the defender's boss runs train while round 1 (index 0) is
    open, two rounds before their own. Scores follow each competitor's skill and the task's seed."""

    slow_d: bool = True

    def play(self, request: RunRequest) -> RunReport:
        if self.slow_d and request.match_id.startswith("r1-") and request.competitor.name == "d":
            self.early_started.wait(WAIT_SECONDS)
        skill = {"a": 1.0, "b": 1.2, "c": 1.4, "d": 1.6, CHAMPION: 1.5}[request.competitor.name]
        return succeeded(skill + request.task.seed % 7 / 100)


def test_the_defenders_boss_runs_trained_rounds_ahead_are_adopted_by_the_boss_round_whatever_its_index(
        store: Store, settings: Settings) -> None:
    with store.transaction() as session:
        add_competitors(session, "c", "d")
        alone, early = (create_tournament(session, name=name, kind="text", seed=3, entrants=["a", "b", "c", "d"],
                                          champion=CHAMPION).id for name in ("one-slot", "two-slots"))
    one_slot, two_slots = TwoRoundsToTheBoss(slow_d=False), TwoRoundsToTheBoss()
    finished = _drive(store, settings, alone, one_slot, parallel=1)
    started = time.monotonic()
    assert _drive(store, settings, early, two_slots, parallel=2) == finished
    # The first run trained early is the defender's boss run, started while d's first-round run waited
    # for it (round index 0 open), for a boss round whose index (2) was not known then.
    assert time.monotonic() - started < WAIT_SECONDS
    assert [(r.match_id, r.competitor.name) for r in two_slots.runs if r.run_id < 0][0] == ("boss", CHAMPION)
    with store.session() as session:
        assert [(r.index, r.stage) for r in get_tournament(session, early).rounds][:3] == [
            (0, "knockout"), (1, "knockout"), (2, "boss")]
    assert len(two_slots.runs) == len(one_slot.runs)  # adopted: none trained twice
    assert _stored(store, early) == _stored(store, alone)


def test_the_record_follows_a_runs_outcome_not_the_look_aheads_guess(store: Store, settings: Settings) -> None:
    """The look ahead takes a run told at its deadline as failed; the sandbox then always ends it timed
    out. Were such a run to succeed all the same, the round would be decided on its stored success: the
    early runs of the round its failure led to are adopted only where the real next rounds play them."""

    @dataclass
    class SucceedsPastItsDeadline(ByeAndDeadline):
        def execute(self, request: RunRequest) -> RunReport:
            report = super().execute(request)
            return succeeded(0.5) if report.status == RunStatus.TIMED_OUT else report

    alone = _bye_for_c(store, settings, "one-slot")
    assert _drive(store, settings, alone, SucceedsPastItsDeadline(), parallel=1).champion == CHAMPION
    c_boss = [("boss", "c")] * settings.rules.boss_tasks_text
    executor = SucceedsPastItsDeadline(ends_b=lambda e: _started_early(e)[-len(c_boss):] == c_boss)
    tournament_id = _bye_for_c(store, settings, "two-slots")
    assert _drive(store, settings, tournament_id, executor, parallel=2).champion == CHAMPION
    assert _started_early(executor)[-len(c_boss):] == c_boss  # foreseen on b's failure; b's success played b v c first
    assert _stored(store, tournament_id) == _stored(store, alone)


@dataclass
class AdoptedThenNotStarted(Final):
    """The first early boss run waits until the boss round has adopted it, then cannot start (no node
    could hold it, as on a cluster): it is the adopted run's first attempt by then."""

    store: Store | None = None
    tournament_id: int = 0
    failed_once: bool = False

    def play(self, request: RunRequest) -> RunReport:
        if request.run_id < 0 and not self.failed_once:
            self.failed_once = True
            assert self.store is not None
            deadline = time.monotonic() + WAIT_SECONDS
            while not _boss_attempt_running(self.store, self.tournament_id) and time.monotonic() < deadline:
                time.sleep(0.02)
            raise RunNotStarted("no live node could hold it")
        return super().play(request)


def _boss_attempt_running(store: Store, tournament_id: int) -> bool:
    with store.session() as session:
        return any(r.task.match.match_id == "boss" and AttemptStatus.RUNNING in [a.status for a in r.attempt_records]
                   for r in tournament_runs(session, tournament_id))  # fmt: skip


def test_an_adopted_early_run_that_cannot_start_is_withdrawn_not_left_running(store: Store, settings: Settings) -> None:
    """Adopted, an early run's try is its stored run's first attempt: one that cannot start is withdrawn as
    any run that cannot start (left running, the next drive would charge the competitor a try)."""
    tournament_id = _tournament(store, "adopted")
    executor = AdoptedThenNotStarted(store=store, tournament_id=tournament_id)
    with pytest.raises(RunNotStarted, match="no live node"):
        _drive(store, settings, tournament_id, executor, parallel=2)
    with store.session() as session:
        attempts = [a.status for r in tournament_runs(session, tournament_id) for a in r.attempt_records]
    assert AttemptStatus.RUNNING not in attempts
