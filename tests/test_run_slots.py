"""Run slots of the orchestrator: a slot takes the next pending run as soon as its own is done (not
when every slot's run is), a staged executor's artifact is scored while the slot trains the next run,
and every run folder gets its slot's timings. The tournament's outcome does not change."""

from __future__ import annotations

import errno
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from trainarena.contract import Direction, RunStatus, TaskType
from trainarena.engine.model import Stage
from trainarena.execution.supervise import EitherStop
from trainarena.orchestrator import Tending, create_tournament, drive
from trainarena.runs import TIMINGS_FILE, ProgressEvent, RunNotStarted, RunReport, RunRequest
from trainarena.settings import Settings
from trainarena.store import Store, add_competitor, get_tournament, tournament_runs
from trainarena.tasks.base import Evaluation, TaskDefinition

NAMES = [f"c{i}" for i in range(4)]
WAIT_SECONDS = 10.0  # how long a blocked run waits for what it expects before giving up
# A score waits this long for the next script: the last run of a round waits in vain (the next round
# needs its score), so keep it short.
SCORE_WAIT_SECONDS = 3.0


def task_source(kind: str, stage: Stage, match_id: str, task_index: int, seed: int) -> TaskDefinition:
    return TaskDefinition(f"{stage}-{match_id}-{task_index}", TaskType.INSTRUCT, "tiny", {"source": "fake"}, 1.0, seed)


def report_for(request: RunRequest) -> RunReport:
    loss = 1.0 + NAMES.index(request.competitor.name) / 10 + (request.task.seed % 7) / 100
    return RunReport(RunStatus.SUCCEEDED, 0.0, 1.0, evaluation=Evaluation(loss, Direction.LOWER, per_example=(loss,)))


@dataclass
class Recorder:
    """Counts run starts; lets a run wait until ``count`` more runs started after it."""

    started: int = 0
    condition: threading.Condition = field(default_factory=threading.Condition)

    def start(self) -> int:
        with self.condition:
            self.started += 1
            self.condition.notify_all()
            return self.started

    def wait_for(self, count: int, seconds: float = WAIT_SECONDS) -> bool:
        with self.condition:
            return self.condition.wait_for(lambda: self.started >= count, seconds)


@dataclass
class FirstRunWaits:
    """A plain executor whose first run lasts until two more runs have started (or gives up)."""

    runs: Recorder = field(default_factory=Recorder)
    first_overlapped: bool | None = None

    def execute(self, request: RunRequest) -> RunReport:
        if self.runs.start() == 1:
            self.first_overlapped = self.runs.wait_for(3)
        return report_for(request)


@dataclass
class Scoring:
    score: Callable[[], RunReport]

    def finish(self) -> RunReport:
        return self.score()


@dataclass
class StagedExecutor:
    """Scripts are instant; scoring a run waits until the next run's script has started."""

    runs: Recorder = field(default_factory=Recorder)
    overlapped: list[bool] = field(default_factory=list)
    scoring_threads: list[tuple[str, int]] = field(default_factory=list)  # (hook or "score", thread)

    def warm_up(self, task: TaskDefinition) -> None:
        self.scoring_threads.append(("warm_up", threading.get_ident()))

    def end_scoring(self) -> None:
        self.scoring_threads.append(("end_scoring", threading.get_ident()))

    def execute(self, request: RunRequest) -> RunReport:  # pragma: no cover - the orchestrator uses train
        raise AssertionError("a staged executor's runs go through train and finish")

    def train(self, request: RunRequest) -> Scoring:
        number = self.runs.start()

        def score() -> RunReport:
            self.scoring_threads.append(("score", threading.get_ident()))
            self.overlapped.append(self.runs.wait_for(number + 1, SCORE_WAIT_SECONDS))
            return report_for(request)

        return Scoring(score)


@pytest.fixture(autouse=True)
def _competitors(store: Store) -> None:
    with store.transaction() as session:
        for name in NAMES:
            add_competitor(session, name=name, repo_url=f"https://example.org/{name}.git", commit="f" * 40,
                           tree_hash=f"tree-{name}", source_digest=f"digest-{name}", entrypoint="train.py")


def play(store: Store, settings: Settings, executor, parallel: int, name: str = "t", tending: Tending | None = None) -> tuple:
    with store.transaction() as session:
        tid = create_tournament(session, name=name, kind="text", seed=5, entrants=NAMES).id
    drive(store, tid, task_source=task_source, executor=executor, rules=settings.rules, weight_rules=settings.weights,
          work_dir=settings.work_dir, parallel=parallel, tending=tending)
    with store.session() as session:
        tournament = get_tournament(session, tid)
        runs = [(r.competitor.name, r.task.index, r.status, r.evaluation.score, r.counted_attempt.log_path) for r in tournament_runs(session, tid)]
        folders = [settings.work_dir / f"tournament-{tid}" / f"run-{r.id}" / "attempt-1" for r in tournament_runs(session, tid)]
        return tournament.champion_after.name, [run[:4] for run in runs], folders


def test_a_free_slot_takes_the_next_run_while_the_other_slot_still_runs(store: Store, settings: Settings) -> None:
    executor = FirstRunWaits()
    play(store, settings, executor, parallel=2)
    assert executor.first_overlapped is True  # the second slot ran two runs during the first one


def test_artifacts_are_scored_while_the_slot_trains_the_next_run(store: Store, settings: Settings) -> None:
    staged = StagedExecutor()
    champion, runs, folders = play(store, settings, staged, parallel=1)
    plain = play(store, settings, FirstRunWaits(), parallel=1, name="plain")
    assert (champion, runs) == plain[:2]  # the same tournament, whichever way it was executed
    # Every round but the last run of each round overlaps the next script (a round waits for its scores).
    assert sum(staged.overlapped) >= len(runs) / 2 and len(staged.overlapped) == len(runs)


def test_each_run_folder_records_its_slot_timings(store: Store, settings: Settings) -> None:
    _champion, _runs, folders = play(store, settings, StagedExecutor(), parallel=2)
    timings = [json.loads((folder / TIMINGS_FILE).read_text()) for folder in folders]
    assert all({"slot", "claimed_at", "slot_freed_at", "store"} <= set(t) for t in timings)
    assert {t["slot"] for t in timings} == {0, 1}
    for entry in timings:
        assert entry["claimed_at"] <= entry["slot_freed_at"] and entry["store"] >= 0
    by_slot: dict[int, list[dict]] = {}
    for entry in sorted(timings, key=lambda t: t["claimed_at"]):
        by_slot.setdefault(entry["slot"], []).append(entry)
    for entries in by_slot.values():  # a slot takes its next run only once it is free
        assert all(a["slot_freed_at"] <= b["claimed_at"] for a, b in zip(entries, entries[1:], strict=False))


def test_the_scoring_thread_is_warmed_up_first_and_ended_last(store: Store, settings: Settings) -> None:
    staged = StagedExecutor()
    play(store, settings, staged, parallel=2)
    hooks = [hook for hook, _thread in staged.scoring_threads]
    assert hooks[0] == "warm_up" and hooks[-1] == "end_scoring" and hooks.count("warm_up") == hooks.count("end_scoring") == 1
    assert len({thread for _hook, thread in staged.scoring_threads}) == 1  # one thread, whose worker it is


@dataclass
class WarmUpFails(StagedExecutor):
    def warm_up(self, task: TaskDefinition) -> None:
        raise OSError("no memory for the evaluation worker")


def test_a_failed_warm_up_is_logged_and_the_tournament_goes_on(store: Store, settings: Settings,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="trainarena.run_slots"):
        champion, runs, _folders = play(store, settings, WarmUpFails(), parallel=2)
    assert champion in NAMES and all(status == RunStatus.SUCCEEDED for _name, _task, status, _score in runs)
    (record,) = [r for r in caplog.records if "warming up the evaluation worker failed" in r.getMessage()]
    assert "no memory for the evaluation worker" in record.getMessage() and record.exc_info is not None


def test_an_early_run_is_killed_at_once_only_when_dropped_and_gets_the_grace_on_a_drive_stop() -> None:
    dropped, outer = threading.Event(), threading.Event()
    stop = EitherStop(dropped, outer)
    assert not stop.is_set()
    outer.set()  # the drive is stopped: the run may be adopted (stored) by now, so it may save its work
    assert stop.is_set() and not stop.at_once()
    dropped.set()  # its round does not need it: nothing of it is kept
    assert stop.at_once()
    assert EitherStop(dropped, None).at_once()


TEND_SECONDS = 0.05


@dataclass
class TendedDuringTheFirstRun:
    """The first run lasts until the caller's tending was done three times (or gives up); the tending
    fails every time, as a broken schedule would."""

    tended: list[float] = field(default_factory=list)  # time.monotonic() of each call
    three_times: threading.Event = field(default_factory=threading.Event)
    first_saw_tending: bool | None = None

    def execute(self, request: RunRequest) -> RunReport:
        if self.first_saw_tending is None:  # one slot: one run at a time
            self.first_saw_tending = self.three_times.wait(WAIT_SECONDS)
        return report_for(request)

    def tend(self) -> None:
        self.tended.append(time.monotonic())
        if len(self.tended) >= 3:
            self.three_times.set()
        raise OSError("the schedule's store is locked")


@dataclass
class Instant:
    def execute(self, request: RunRequest) -> RunReport:
        return report_for(request)


def test_tending_is_done_while_a_run_goes_on_never_in_a_busy_loop_and_its_faults_never_end_the_drive(
    store: Store, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    executor = TendedDuringTheFirstRun()
    with caplog.at_level(logging.ERROR, logger="trainarena.run_slots"):
        champion, runs, _folders = play(store, settings, executor, parallel=1, tending=Tending(executor.tend, TEND_SECONDS))
    assert executor.first_saw_tending is True  # tended while the run went on, not once it was done
    assert (champion, runs) == play(store, settings, Instant(), parallel=1, name="untended")[:2]
    gaps = [later - earlier for earlier, later in zip(executor.tended, executor.tended[1:], strict=False)]
    assert min(gaps) >= TEND_SECONDS  # counted from the end of the previous call: never a busy loop
    failures = [r for r in caplog.records if "the work done between runs failed" in r.getMessage()]
    assert len(failures) == len(executor.tended) and "the schedule's store is locked" in str(failures[0].exc_info[1])
    with pytest.raises(ValueError, match="every_seconds must be positive"):
        Tending(executor.tend, 0)


@dataclass
class NoNodeFor:
    """Cannot start ``competitor``'s runs (``RunNotStarted``, as a cluster without the node it needs)
    until ``node_back`` is set; every other run, and then every run, succeeds."""

    competitor: str
    node_back: threading.Event = field(default_factory=threading.Event)
    refused: list[int] = field(default_factory=list)

    def execute(self, request: RunRequest) -> RunReport:
        if request.competitor.name == self.competitor and not self.node_back.is_set():
            self.refused.append(request.attempt)
            (request.run_dir / "start-claim").write_text("withdrawn")
            raise RunNotStarted(f"no live node could hold {request.task.name}")
        return report_for(request)


@pytest.mark.parametrize("parallel", [1, 2])
def test_a_run_that_could_not_start_stops_the_drive_and_costs_no_try(store: Store, settings: Settings, parallel: int) -> None:
    executor = NoNodeFor("c2")
    with store.transaction() as session:
        tid = create_tournament(session, name="no-node", kind="text", seed=5, entrants=NAMES).id
    events: list[ProgressEvent] = []
    for _ in range(3):  # driven again and again while the node is missing (serve retries after a fault)
        with pytest.raises(RunNotStarted, match="no live node could hold"):
            drive(store, tid, task_source=task_source, executor=executor, rules=settings.rules, weight_rules=settings.weights,
                  work_dir=settings.work_dir, parallel=parallel, progress=events.append)  # fmt: skip
    with store.session() as session:
        refused = [(r.status, r.attempts) for r in tournament_runs(session, tid) if r.competitor.name == "c2"]
    assert executor.refused == [1, 1, 1]  # always claimed afresh as attempt 1: withdrawn, never interrupted
    assert refused and (RunStatus.PENDING.value, 0) in refused and all(status != "failed" for status, _ in refused)
    assert [e.kind for e in events].count("run_not_started") == 3
    assert not any((settings.work_dir / f"tournament-{tid}").glob("run-*/attempt-*/start-claim"))  # folders gone too
    executor.node_back.set()
    finished = drive(store, tid, task_source=task_source, executor=executor, rules=settings.rules,
                     weight_rules=settings.weights, work_dir=settings.work_dir, parallel=parallel)  # fmt: skip
    with store.session() as session:
        attempts = [[a.status for a in r.attempt_records] for r in tournament_runs(session, tid)]
    assert finished is not None and finished.champion is not None
    assert all(statuses == ["succeeded"] for statuses in attempts)


@pytest.mark.parametrize("parallel", [1, 2])
def test_a_run_whose_folder_cannot_be_made_stops_the_drive_and_costs_no_try(store: Store, settings: Settings, parallel: int) -> None:
    """The platform's disk (unwritable, full, or as here a file where the tournament's folder goes): the
    drive stops with one line naming the path, no run is left running (it would cost a try, recovered
    as interrupted), and driven again once the disk is fixed, every run plays on its first attempt."""
    with store.transaction() as session:
        tid = create_tournament(session, name="no-folder", kind="text", seed=5, entrants=NAMES).id
    blocked = settings.work_dir / f"tournament-{tid}"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("not a folder")
    events: list[ProgressEvent] = []
    with pytest.raises(RunNotStarted, match=f"could not make the folder of run .*{blocked}"):
        drive(store, tid, task_source=task_source, executor=FirstRunWaits(), rules=settings.rules, weight_rules=settings.weights,
              work_dir=settings.work_dir, parallel=parallel, progress=events.append)  # fmt: skip
    with store.session() as session:
        assert {(r.status, r.attempts) for r in tournament_runs(session, tid)} == {(RunStatus.PENDING.value, 0)}
    assert [e.kind for e in events if e.kind.startswith("run_")] == ["run_not_started"] * parallel
    blocked.unlink()
    finished = drive(store, tid, task_source=task_source, executor=FirstRunWaits(runs=Recorder(started=3)), rules=settings.rules,
                     weight_rules=settings.weights, work_dir=settings.work_dir, parallel=parallel)  # fmt: skip
    with store.session() as session:
        assert all([a.status for a in r.attempt_records] == ["succeeded"] for r in tournament_runs(session, tid))
    assert finished is not None and finished.champion is not None


@pytest.mark.parametrize("kept", [None, "run-99/attempt-1/logs/stderr.log"], ids=["empty", "with-logs"])
def test_a_drive_stopped_by_a_full_disk_leaves_no_empty_run_or_tournament_folder(
    store: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch, kept: str | None
) -> None:
    """A full disk let the drive make a run's folder but not its attempt's: the empty ``run-N`` was left
    in the work folder (QA), and so was the tournament's, left empty; one holding anything else (here
    an earlier attempt's logs) stays as it was."""
    with store.transaction() as session:
        tid = create_tournament(session, name="full-disk", kind="text", seed=5, entrants=NAMES).id
    work = settings.work_dir / f"tournament-{tid}"
    if kept is not None:
        (work / kept).parent.mkdir(parents=True)
        (work / kept).write_text("an earlier try\n")
    make_folder = Path.mkdir

    def full_disk(path: Path, mode: int = 0o777, parents: bool = False, exist_ok: bool = False) -> None:
        if not path.name.startswith("attempt-"):
            return make_folder(path, mode, parents, exist_ok)
        make_folder(path.parent, parents=True, exist_ok=True)
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(Path, "mkdir", full_disk)
    with pytest.raises(RunNotStarted, match="could not make the folder of run .*No space left on device"):
        drive(store, tid, task_source=task_source, executor=FirstRunWaits(), rules=settings.rules, weight_rules=settings.weights,
              work_dir=settings.work_dir, parallel=2)  # fmt: skip
    if kept is None:
        assert not work.exists() and settings.work_dir.is_dir()
    else:
        assert [p.relative_to(work).as_posix() for p in sorted(work.rglob("*")) if p.is_file()] == [kept]
        assert list(work.glob("run-*")) == [work / "run-99"]
