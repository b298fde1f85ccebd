from __future__ import annotations

import hashlib
import json
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from trainarena.contract import Direction, RunStatus, TaskType
from trainarena.engine.bracket import replay
from trainarena.engine.model import Finished, Stage
from trainarena.execution.supervise import STOPPED_REASON, StopAtOnce, current_stop_event
from trainarena.orchestrator import LeaseHeld, LeaseLost, create_tournament, drive, load_record
from trainarena.reporting.bracket import read_bracket
from trainarena.reporting.run_detail import write_result_json
from trainarena.round_tasks import task_seed
from trainarena.runs import RESULT_FILE_NAME, ProgressEvent, RunInterrupted, RunReport, RunRequest, attempt_dir
from trainarena.settings import LeaseRules, Settings
from trainarena.store import (
    Store,
    TournamentLease,
    add_competitor,
    champion_history,
    get_tournament,
    load_tournament,
    open_store,
    stored_weights,
    tournament_runs,
)
from trainarena.store.leases import DriverIdentity, lease_holder, release, try_acquire
from trainarena.tasks.base import Evaluation, TaskDefinition


def fake_task_source(kind: str, stage: Stage, match_id: str, task_index: int, seed: int) -> TaskDefinition:
    return TaskDefinition(
        name=f"{stage}-{match_id}-{task_index}",
        task_type=TaskType.IMAGE if kind == "image" else TaskType.INSTRUCT,
        base_model="tiny-llama",
        dataset={"source": "fake", "seed": seed},
        budget_seconds=1.0,
        seed=seed,
    )


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from the parts (same run, same result, on any attempt)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class FakeExecutor:
    """Scores from seeded latent skills (lower loss is better) plus seeded noise; a few runs fail.

    ``crash_on_call`` raises on that call (1-based) to simulate the platform dying mid-run."""

    skills: dict[str, float]
    failure_rate: float = 0.1
    crash_on_call: int | None = None
    crash_for: str | None = None  # always raise for this competitor
    delay: float = 0.0
    calls: int = 0
    reported: Counter[int] = field(default_factory=Counter)  # run id -> reports returned
    active: int = 0
    max_active: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def execute(self, request: RunRequest) -> RunReport:
        with self.lock:
            self.calls += 1
            call = self.calls
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            assert request.run_dir.is_dir()
            if call == self.crash_on_call or request.competitor.name == self.crash_for:
                raise RuntimeError(f"platform died on call {call}")
            time.sleep(self.delay)
            report = self._report(request)
            with self.lock:
                self.reported[request.run_id] += 1
            return report
        finally:
            with self.lock:
                self.active -= 1

    def _report(self, request: RunRequest) -> RunReport:
        name, seed = request.competitor.name, request.task.seed
        roll = _unit("fail", name, seed)
        log = request.run_dir / "stdout.log"
        log.write_text("trained\n")
        if roll < self.failure_rate / 2:
            return RunReport(RunStatus.FAILED, 0.0, 1.0, log, failure_reason="exit code 1")
        if roll < self.failure_rate:
            nan = Evaluation(float("nan"), Direction.LOWER)
            return RunReport(RunStatus.SUCCEEDED, 0.0, 1.0, log, request.run_dir, "ab" * 32, evaluation=nan)
        loss = 3.0 - self.skills[name] + 0.2 * (_unit("noise", name, seed) - 0.5)
        evaluation = Evaluation(loss, Direction.LOWER, per_example=(loss, loss + 0.1), details={"rows": 2})
        prepared = {"train_file": f"/prepared/{request.task_id}/train.jsonl"}
        return RunReport(RunStatus.SUCCEEDED, 0.0, 1.5, log, request.run_dir, "cd" * 32, evaluation=evaluation,
                         prepared_paths=prepared)


def _names(count: int) -> list[str]:
    return [f"c{i:02d}" for i in range(count)]


def _skills(names: list[str]) -> dict[str, float]:
    rng = random.Random(7)
    return {name: rng.uniform(0.0, 2.0) for name in names}


def _register(store: Store, names: list[str]) -> None:
    with store.transaction() as session:
        for name in names:
            add_competitor(
                session, name=name, repo_url=f"https://example.org/{name}.git", commit="f" * 40,
                tree_hash=f"tree-{name}", source_digest=f"digest-{name}", entrypoint="train.py",
            )


def _new_tournament(store: Store, names: list[str], *, name: str = "t1", champion: str | None = None) -> int:
    with store.transaction() as session:
        return create_tournament(session, name=name, kind="text", seed=11, entrants=names, champion=champion).id


def _drive(store: Store, settings: Settings, tid: int, executor: FakeExecutor, **kwargs) -> Finished | None:
    return drive(
        store, tid, task_source=fake_task_source, executor=executor, rules=settings.rules,
        weight_rules=settings.weights, work_dir=settings.work_dir, **kwargs,
    )


def _outcome(store: Store, tid: int) -> tuple:
    """Everything a tournament decided, to compare a resumed drive with an uninterrupted one."""
    with store.session() as session:
        tournament = get_tournament(session, tid)
        runs = tuple(
            (r.task.match.round.index, r.task.match.match_id, r.task.index, r.competitor.name, r.status,
             None if r.evaluation is None else r.evaluation.score)
            for r in tournament_runs(session, tid)
        )
        champion = None if tournament.champion_after is None else tournament.champion_after.name
        return champion, tournament.outcome_reason, stored_weights(session, tid), tournament.weight_remainder, runs


@pytest.mark.parametrize("entrants", [5, 20])
def test_whole_tournament_reaches_a_champion(store: Store, settings: Settings, entrants: int) -> None:
    names = _names(entrants)
    _register(store, names)
    tid = _new_tournament(store, names)
    executor = FakeExecutor(_skills(names))
    finished = _drive(store, settings, tid, executor)
    assert isinstance(finished, Finished) and finished.crowned
    champion, reason, weights, remainder, runs = _outcome(store, tid)
    assert champion == finished.champion and reason == finished.reason
    assert all(status in {"succeeded", "failed"} for *_, status, _ in runs)
    assert executor.calls == len(runs) and set(executor.reported.values()) == {1}
    with store.session() as session:
        stages = [r.stage for r in get_tournament(session, tid).rounds]
    # No defending champion: no boss round; 20 entrants open with a group stage, 5 with a knockout.
    assert stages[0] == ("group" if entrants >= settings.rules.group_stage_min_entrants else "knockout")
    assert stages[-1] == "knockout" and "boss" not in stages
    assert math.isclose(sum(weights.values()) + remainder, 1.0)
    assert set(weights) >= set(names) and max(weights, key=weights.__getitem__) == champion
    with store.session() as session:
        assert [h.competitor.name for h in champion_history(session, "text")] == [champion]
        assert get_tournament(session, tid).status == "finished"
        stored = tournament_runs(session, tid)
        assert all(r.attempts == 1 and r.finished_at is not None for r in stored)
        evaluated = [r for r in stored if r.evaluation is not None]
        assert evaluated and all(r.task.prepared == {"train_file": f"/prepared/{r.task.id}/train.jsonl"}
                                 for r in evaluated if r.evaluation.score is not None)
        assert any(r.evaluation.score is None and "not finite" in (r.evaluation.failure or "") for r in evaluated)
    # Driving a finished tournament again changes nothing and runs nothing.
    again = _drive(store, settings, tid, executor)
    assert again == finished and executor.calls == len(runs)


def _reference(tmp_path: Path, names: list[str], store_of_its_own: Callable[[Path], str]) -> tuple:
    """The outcome of the tournament of ``names`` driven at once in a fresh store."""
    settings = Settings(data_dir=tmp_path / "reference", database_url=store_of_its_own(tmp_path / "reference"))
    with open_store(settings) as reference:
        _register(reference, names)
        tid = _new_tournament(reference, names)
        _drive(reference, settings, tid, FakeExecutor(_skills(names)))
        return _outcome(reference, tid)


def test_stopping_after_every_step_and_resuming_changes_nothing(
    store: Store, settings: Settings, tmp_path: Path, store_of_its_own: Callable[[Path], str]
) -> None:
    names = _names(5)
    _register(store, names)
    tid = _new_tournament(store, names)
    executor = FakeExecutor(_skills(names))
    drives = 0
    while _drive(store, settings, tid, executor, max_steps=1) is None:
        drives += 1
        assert drives < 100
    assert _outcome(store, tid) == _reference(tmp_path, names, store_of_its_own)
    assert set(executor.reported.values()) == {1}


def test_a_drive_writes_the_result_file_a_killed_driver_left_unwritten(store: Store, settings: Settings) -> None:
    """A driver killed between a run's commit and its ``on_stored`` (the CLI's result.json) left a finished
    run with no result file; the next drive tells ``on_stored`` of it at its start, from the store, and
    of no run whose file is there."""
    names = _names(5)
    _register(store, names)
    tid = _new_tournament(store, names)
    executor = FakeExecutor(_skills(names))
    told: list[tuple[int, Path]] = []

    def write_result(run_id: int, run_dir: Path) -> None:
        told.append((run_id, run_dir))
        (run_dir / RESULT_FILE_NAME).write_text(f"{run_id}\n")

    assert _drive(store, settings, tid, executor, max_steps=4, on_stored=write_result) is None
    assert _drive(store, settings, tid, executor, max_steps=3) is None  # killed before each run's file, as it were
    with store.session() as session:
        unwritten = [(r.id, attempt_dir(settings.work_dir, tid, r.id, r.attempts)) for r in tournament_runs(session, tid)
                     if r.counted_attempt is not None and (r.id, attempt_dir(settings.work_dir, tid, r.id, r.attempts)) not in told]
    assert len(unwritten) == 2 and len(told) == 3
    told.clear()
    assert _drive(store, settings, tid, executor, max_steps=1, on_stored=write_result) is None
    assert sorted(told[:2]) == sorted(unwritten) and all((run_dir / RESULT_FILE_NAME).read_text() == f"{run_id}\n" for run_id, run_dir in unwritten)
    assert set(executor.reported.values()) == {1}  # written from the store: no run trained again


def test_the_result_file_is_whole_or_absent(store: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write cut short (the driver killed mid-write) leaves no result.json for the next drive to keep:
    the file appears only once whole."""
    names = _names(3)
    _register(store, names)
    tid = _new_tournament(store, names)
    stored: list[tuple[int, Path]] = []
    assert _drive(store, settings, tid, FakeExecutor(_skills(names)), max_steps=4, on_stored=lambda *run: stored.append(run)) is None
    run_id, run_dir = stored[0]
    real_write = Path.write_text

    def cut_short(path: Path, text: str, **kwargs: Any) -> int:
        real_write(path, text[:10], **kwargs)
        raise OSError("killed mid-write")

    monkeypatch.setattr(Path, "write_text", cut_short)
    with pytest.raises(OSError, match="mid-write"):
        write_result_json(store, run_id, run_dir)
    assert not (run_dir / RESULT_FILE_NAME).exists()
    monkeypatch.undo()
    written = write_result_json(store, run_id, run_dir)
    assert json.loads(written.read_text())["run_id"] == run_id


@pytest.mark.slow
def test_platform_crash_at_every_run_resumes_without_rerunning_finished_runs(
    tmp_path: Path, store_of_its_own: Callable[[Path], str]
) -> None:
    names = _names(5)
    expected = _reference(tmp_path, names, store_of_its_own)
    runs_total = len(expected[-1])
    for crash_at in range(1, runs_total + 1):
        data_dir = tmp_path / f"crash-{crash_at}"
        settings = Settings(data_dir=data_dir, database_url=store_of_its_own(data_dir))  # a fresh store: no champion yet
        with open_store(settings) as store:
            _register(store, names)
            tid = _new_tournament(store, names)
            executor = FakeExecutor(_skills(names), crash_on_call=crash_at)
            with pytest.raises(RuntimeError, match="platform died"):
                _drive(store, settings, tid, executor)
            executor.crash_on_call = None
            assert _drive(store, settings, tid, executor) is not None
            assert _outcome(store, tid) == expected
            assert set(executor.reported.values()) == {1}
            with store.session() as session:
                runs = tournament_runs(session, tid)
            assert sorted(r.attempts for r in runs) == [1] * (runs_total - 1) + [2]  # only the crashed run twice
            [crashed] = [r for r in runs if r.attempts == 2]
            assert [a.status for a in crashed.attempt_records][0] == "interrupted"
            assert crashed.counted_attempt is crashed.attempt_records[1]


def test_second_tournament_meets_the_previous_champion_in_a_boss_round(store: Store, settings: Settings) -> None:
    names = _names(8)
    _register(store, names)
    first = _drive(store, settings, _new_tournament(store, names[:5]), FakeExecutor(_skills(names)))
    assert first is not None and first.champion is not None
    tid = _new_tournament(store, names[5:], name="t2")
    second = _drive(store, settings, tid, FakeExecutor(_skills(names)))
    assert second is not None
    with store.session() as session:
        tournament = get_tournament(session, tid)
        assert tournament.champion_before is not None and tournament.champion_before.name == first.champion
        boss = tournament.rounds[-1]
        assert boss.stage == "boss" and first.champion in boss.matches[0].competitors
        assert len(boss.matches[0].tasks) == settings.rules.boss_tasks_text
        history = [h.competitor.name for h in champion_history(session, "text")]
    assert history == [first.champion] + ([second.champion] if second.crowned else [])
    assert math.isclose(sum(_outcome(store, tid)[2].values()) + _outcome(store, tid)[3], 1.0)


def test_parallel_runs_overlap_and_give_the_same_result(
    store: Store, settings: Settings, tmp_path: Path, store_of_its_own: Callable[[Path], str]
) -> None:
    names = _names(5)
    _register(store, names)
    tid = _new_tournament(store, names)
    executor = FakeExecutor(_skills(names), delay=0.05)
    events: list[ProgressEvent] = []
    _drive(store, settings, tid, executor, parallel=3, progress=events.append)
    assert executor.max_active >= 2
    assert _outcome(store, tid) == _reference(tmp_path, names, store_of_its_own)
    started = [e for e in events if e.kind == "run_started"]
    finished = [e for e in events if e.kind == "run_finished"]
    assert len(started) == len(finished) == executor.calls
    assert all(e.budget_seconds == 1.0 and e.task_name and e.competitor for e in started)
    assert events[0].kind == "round_created" and events[-1].kind == "finished"


def test_a_crash_in_one_parallel_run_keeps_the_others(store: Store, settings: Settings) -> None:
    names = _names(5)
    _register(store, names)
    tid = _new_tournament(store, names)
    executor = FakeExecutor(_skills(names), crash_on_call=2)
    with pytest.raises(RuntimeError, match="platform died"):
        _drive(store, settings, tid, executor, parallel=4)
    with store.session() as session:
        statuses = Counter(r.status for r in tournament_runs(session, tid))
    assert statuses[RunStatus.RUNNING] == 1 and sum(statuses.values()) == 4
    assert statuses[RunStatus.SUCCEEDED] + statuses[RunStatus.FAILED] == 3


def test_a_run_that_keeps_killing_the_platform_fails_after_max_attempts(store: Store, settings: Settings) -> None:
    names = _names(3)
    _register(store, names)
    tid = _new_tournament(store, names)
    executor = FakeExecutor(_skills(names), failure_rate=0.0, crash_for="c01")
    for _ in range(2):
        with pytest.raises(RuntimeError):
            _drive(store, settings, tid, executor, max_attempts=2)
    finished = _drive(store, settings, tid, FakeExecutor(_skills(names), failure_rate=0.0), max_attempts=2)
    assert finished is not None and finished.champion != "c01"
    with store.session() as session:
        crashed = [r for r in tournament_runs(session, tid) if r.competitor.name == "c01"]
    assert [(r.status, r.attempts) for r in crashed] == [("failed", 2)]
    assert "interrupted 2 times" in (crashed[0].failure_reason or "")


@dataclass
class NodeLosingExecutor(FakeExecutor):
    """Loses ``lose_for``'s first ``lose_times`` tries as a cluster loses a run with its node."""

    lose_for: str = ""
    lose_times: int = 1
    lost: int = 0

    def execute(self, request: RunRequest) -> RunReport:
        if request.competitor.name == self.lose_for and self.lost < self.lose_times:
            self.lost += 1
            raise RunInterrupted(f"lost on the Ray cluster (NodeDiedError: node {self.lost} died); tried again")
        return super().execute(request)


@pytest.mark.parametrize("parallel", [1, 2])
def test_a_try_lost_with_its_node_is_recorded_and_tried_again_in_the_same_drive(
    store: Store, settings: Settings, parallel: int
) -> None:
    names = _names(4)
    _register(store, names)
    tid = _new_tournament(store, names)
    executor = NodeLosingExecutor(_skills(names), failure_rate=0.0, lose_for="c02")
    events: list[ProgressEvent] = []
    finished = _drive(store, settings, tid, executor, parallel=parallel, progress=events.append)
    assert finished is not None and finished.champion is not None
    with store.session() as session:
        lost = [r for r in tournament_runs(session, tid) if r.competitor.name == "c02"][0]
        attempts = [(a.number, a.status, a.failure_reason) for a in lost.attempt_records]
        assert attempts[0][:2] == (1, "interrupted") and "NodeDiedError: node 1 died" in (attempts[0][2] or "")
        assert attempts[1][:2] == (2, "succeeded") and lost.counted_attempt.number == 2
        # Scored once: only the counted attempt has an evaluation.
        assert [a.evaluation is not None for a in lost.attempt_records] == [False, True]
    assert executor.reported[lost.id] == 1
    assert [e.competitor for e in events if e.kind == "run_interrupted"] == ["c02"]


@dataclass
class LosingAfterWritingExecutor(NodeLosingExecutor):
    """Its lost tries leave output and a log behind, as a script stopped midway does."""

    def execute(self, request: RunRequest) -> RunReport:
        if request.competitor.name == self.lose_for and self.lost < self.lose_times:
            for folder in ("output", "logs"):
                (request.run_dir / folder).mkdir(parents=True, exist_ok=True)
            (request.run_dir / "output" / "half.safetensors").write_bytes(b"x" * 1000)
            (request.run_dir / "logs" / "stderr.log").write_text("step 1\n")
        return super().execute(request)


def test_an_interrupted_attempt_loses_its_output_and_keeps_its_logs(store: Store, settings: Settings) -> None:
    names = _names(4)
    _register(store, names)
    tid = _new_tournament(store, names)
    executor = LosingAfterWritingExecutor(_skills(names), failure_rate=0.0, lose_for="c02")
    assert _drive(store, settings, tid, executor) is not None
    with store.session() as session:
        lost = [r for r in tournament_runs(session, tid) if r.competitor.name == "c02"][0]
        assert lost.attempt_records[0].status == "interrupted"
    first = settings.work_dir / f"tournament-{tid}" / f"run-{lost.id}" / "attempt-1"
    assert (first / "logs" / "stderr.log").read_text() == "step 1\n"
    assert not (first / "output").exists()


@pytest.mark.parametrize("cap", [{"max_attempts": 3}, {"lease_rules": LeaseRules(max_attempts=3)}])  # given, or the settings'
def test_a_run_lost_on_every_try_fails_after_max_attempts(store: Store, settings: Settings, cap: dict) -> None:
    names = _names(3)
    _register(store, names)
    tid = _new_tournament(store, names)
    executor = NodeLosingExecutor(_skills(names), failure_rate=0.0, lose_for="c01", lose_times=99)
    finished = _drive(store, settings, tid, executor, **cap)
    assert finished is not None and finished.champion != "c01"
    with store.session() as session:
        lost = [r for r in tournament_runs(session, tid) if r.competitor.name == "c01"]
        assert [(r.status, r.attempts) for r in lost] == [("failed", 3)]
        assert [a.status for a in lost[0].attempt_records] == ["interrupted"] * 3
    assert executor.lost == 3


# --- One driver per tournament: the lease ------------------------------------------------------------

SHORT_LEASE = LeaseRules(lease_seconds=0.6, heartbeat_seconds=0.1, wait_poll_seconds=0.05)
ELSEWHERE = DriverIdentity("other-driver", "elsewhere", 4242)  # a live driver on another host


def _hold_lease(store: Store, tid: int, holder: DriverIdentity, rules: LeaseRules) -> None:
    with store.transaction() as session:
        assert try_acquire(session, tid, holder, rules) is None


def test_a_second_driver_told_not_to_wait_names_the_holder_and_touches_nothing(store: Store, settings: Settings) -> None:
    names = _names(3)
    _register(store, names)
    tid = _new_tournament(store, names)
    _hold_lease(store, tid, ELSEWHERE, LeaseRules())
    executor = FakeExecutor(_skills(names))
    with pytest.raises(LeaseHeld, match="'t1' is being driven by elsewhere pid 4242 since .* expires") as caught:
        _drive(store, settings, tid, executor, wait=False)
    assert caught.value.holder is not None and caught.value.holder.host == "elsewhere"
    with store.session() as session:
        assert get_tournament(session, tid).rounds == [] and executor.calls == 0


def test_a_waiting_driver_takes_over_once_the_holders_lease_expired(store: Store, settings: Settings) -> None:
    names = _names(3)
    _register(store, names)
    tid = _new_tournament(store, names)
    _hold_lease(store, tid, ELSEWHERE, SHORT_LEASE)  # and never renewed: that driver died
    waited_for: list = []
    started = time.monotonic()
    finished = _drive(store, settings, tid, FakeExecutor(_skills(names)), wait=True, lease_rules=SHORT_LEASE,
                      on_wait=waited_for.append)
    assert finished is not None and time.monotonic() - started >= SHORT_LEASE.lease_seconds * 0.5
    assert [holder.owner_id for holder in waited_for] == ["other-driver"]
    with store.session() as session:
        assert lease_holder(session, tid) is None  # released at the end


def test_a_driver_that_loses_its_lease_mid_run_kills_its_runs_at_once(store: Store, settings: Settings) -> None:
    """Its heartbeat finds the lease taken over (the driver stalled past it): the runs it trains would
    go on beside the new driver's same runs, and their results can no longer be stored."""
    names = _names(3)
    _register(store, names)
    tid = _new_tournament(store, names)
    seen: list[tuple[bool, bool]] = []  # (stopped, at once) as the run saw its stop

    class TakenOverMidRun(FakeExecutor):
        def execute(self, request: RunRequest) -> RunReport:
            with store.transaction() as session:
                session.execute(update(TournamentLease).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
            _hold_lease(store, tid, ELSEWHERE, LeaseRules())
            stop, deadline = current_stop_event(), time.monotonic() + 30
            while not stop.is_set() and time.monotonic() < deadline:  # a script training on
                time.sleep(0.01)
            seen.append((stop.is_set(), isinstance(stop, StopAtOnce) and stop.at_once()))
            return RunReport(RunStatus.FAILED, 0.0, 1.0, failure_reason=STOPPED_REASON)

    started = time.monotonic()
    with pytest.raises(LeaseLost, match="now held by elsewhere pid 4242"):
        _drive(store, settings, tid, TakenOverMidRun(_skills(names), failure_rate=0.0),
               lease_rules=LeaseRules(lease_seconds=2, heartbeat_seconds=0.2))
    assert seen == [(True, True)] and time.monotonic() - started < 10


def test_a_claimed_attempt_starts_in_an_empty_folder_whatever_an_earlier_store_left(store: Store, settings: Settings) -> None:
    """A store reset while its work folder was kept numbers runs from 1 again: an old artifact in
    ``run-1/attempt-1/output`` must not pass for the new run's when its script writes nothing."""
    names = _names(2)
    _register(store, names)
    tid = _new_tournament(store, names)
    stale = settings.work_dir / f"tournament-{tid}" / "run-1" / "attempt-1" / "output"
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_text("another store's champion")
    seen: list[bool] = []

    class LooksAtItsFolder(FakeExecutor):
        def execute(self, request: RunRequest) -> RunReport:
            seen.append((request.run_dir / "output" / "model.safetensors").exists())
            return super().execute(request)

    assert _drive(store, settings, tid, LooksAtItsFolder(_skills(names), failure_rate=0.0)) is not None
    assert seen and not any(seen)


def test_a_driver_that_lost_its_lease_stops_writing(store: Store, settings: Settings) -> None:
    names = _names(3)
    _register(store, names)
    tid = _new_tournament(store, names)

    class TakenOverMidRun(FakeExecutor):
        def execute(self, request: RunRequest) -> RunReport:
            # The driver stalls past its lease, and another driver takes the tournament over.
            with store.transaction() as session:
                session.execute(update(TournamentLease).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
            _hold_lease(store, tid, ELSEWHERE, LeaseRules())
            return super().execute(request)

    executor = TakenOverMidRun(_skills(names), failure_rate=0.0)
    with pytest.raises(LeaseLost, match="lost its lease .*now held by elsewhere pid 4242"):
        _drive(store, settings, tid, executor)
    assert executor.calls == 1
    with store.session() as session:
        [run] = [r for r in tournament_runs(session, tid) if r.attempts]
        assert (run.status, run.counted_attempt, [a.status for a in run.attempt_records]) == ("running", None, ["running"])
        assert lease_holder(session, tid).owner_id == "other-driver"
    with store.transaction() as session:
        release(session, tid, ELSEWHERE)  # the other driver ends without finishing: ours to recover
    assert _drive(store, settings, tid, FakeExecutor(_skills(names), failure_rate=0.0)) is not None
    with store.session() as session:
        recovered = next(r for r in tournament_runs(session, tid) if r.id == run.id)
        first, second = recovered.attempt_records
        assert (first.status, second.status, recovered.counted_attempt.number) == ("interrupted", "succeeded", 2)
        assert first.evaluation is None and recovered.evaluation is second.evaluation is not None


@dataclass
class BossLeadExecutor:
    """The challenger "new" leads the champion "king" (loss 1.0) by a set relative lead on each boss
    task, by boss round and task; "weak" loses the bracket."""

    leads: dict[str, tuple[float, ...]]
    calls: int = 0

    def execute(self, request: RunRequest) -> RunReport:
        self.calls += 1
        name = request.competitor.name
        if name == "king":
            loss = 1.0
        elif request.stage == Stage.BOSS:
            loss = 1.0 - self.leads[request.match_id][request.task_index]
        else:
            loss = 1.0 if name == "new" else 2.0
        return RunReport(RunStatus.SUCCEEDED, 0.0, 1.0, None, request.run_dir, "ab" * 32,
                         evaluation=Evaluation(loss, Direction.LOWER))


def test_paired_rule_plays_boss_rounds_while_unclear_and_replays(store: Store, settings: Settings) -> None:
    _register(store, ["new", "weak", "king"])
    tid = _new_tournament(store, ["new", "weak"], champion="king")
    executor = BossLeadExecutor({"boss": (0.2, 0.0, 0.1), "boss-2": (0.15, 0.05, 0.1), "boss-3": (0.1, 0.12, 0.08)})
    finished = _drive(store, settings, tid, executor)
    assert settings.rules.boss_rule == "paired"
    assert finished is not None and finished.crowned and finished.champion == "new"
    assert "9 boss tasks" in finished.reason
    with store.session() as session:
        tournament = load_tournament(session, tid)
        bosses = [r for r in tournament.rounds if r.stage == "boss"]
        assert [(r.index, r.matches[0].match_id) for r in bosses] == [(1, "boss"), (2, "boss-2"), (3, "boss-3")]
        seeds = {t.definition["seed"] for r in bosses for t in r.matches[0].tasks}
        assert len(seeds) == 9  # every boss round draws fresh tasks
        replayed = replay(load_record(tournament, settings.rules), settings.rules)
    assert replayed.next == finished and replayed.boss is not None and len(replayed.boss.tasks) == 9
    assert executor.calls == 2 + 9 * 2  # one knockout task for two, then nine boss tasks for two


def test_majority_rule_still_decides_in_one_boss_round(store: Store, settings: Settings) -> None:
    _register(store, ["new", "weak", "king"])
    tid = _new_tournament(store, ["new", "weak"], champion="king")
    rules = settings.rules.model_copy(update={"boss_rule": "majority"})
    executor = BossLeadExecutor({"boss": (0.2, 0.0, 0.1)})
    finished = drive(store, tid, task_source=fake_task_source, executor=executor, rules=rules,
                     weight_rules=settings.weights, work_dir=settings.work_dir)
    assert finished is not None and finished.crowned and "took 2 of 3" in finished.reason
    assert executor.calls == 2 + 3 * 2


def test_an_open_boss_round_after_an_unclear_one_shows_in_play(store: Store, settings: Settings) -> None:
    _register(store, ["new", "weak", "king"])
    tid = _new_tournament(store, ["new", "weak"], champion="king")
    executor = BossLeadExecutor({"boss": (0.2, 0.0, 0.1), "boss-2": (0.15, 0.05, 0.1), "boss-3": (0.1, 0.12, 0.08)})
    # knockout: created + 2 runs; boss: created + 6 runs; boss-2: created, not played
    assert _drive(store, settings, tid, executor, max_steps=11) is None
    with store.session() as session:
        _, replayed, bracket = read_bracket(session, tid, settings.rules)
    assert [(r.stage, r.decided) for r in bracket.rounds] == [("knockout", True), ("boss", True), ("boss", False)]
    assert replayed.boss is not None and not replayed.boss.decided and "another boss round" in replayed.boss.reason
    assert bracket.boss is not None and [name for name, _ in bracket.boss.tasks] == [f"boss-boss-{i}" for i in range(3)]


def test_a_boss_rounds_task_seeds_do_not_depend_on_how_many_rounds_led_to_it() -> None:
    # The defender's boss runs are trained before the challenger, and the number of rounds, are known.
    assert len({task_seed(9, Stage.BOSS, index, "boss", 1) for index in range(1, 6)}) == 1
    assert task_seed(9, Stage.BOSS, 2, "boss", 1) != task_seed(9, Stage.BOSS, 2, "boss-2", 1)
    assert task_seed(9, Stage.BOSS, 2, "boss", 0) != task_seed(9, Stage.BOSS, 2, "boss", 1)
    assert len({task_seed(9, Stage.KNOCKOUT, index, "r1-k001", 0) for index in range(1, 6)}) == 5
