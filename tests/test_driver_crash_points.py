"""The platform's promise for a crash of its own mid-tournament: the tournament goes on and the record
stays true. A recorded driver (tests/crash_point_driver.py) is SIGKILLed at one point of a drive: while
a script trains, in a boss round, with a run's evaluated report added and signed but not committed,
right after a run was committed (before its result.json, which the next drive writes), between rounds, with the end signed but
not committed; with two slots, while a run trains early and once its round adopted it. The next drive
resumes it: no finished run is trained again, the run cut short is played again as its second
attempt (the first keeps its logs), and the end, the scores, the weights and the signed log are those
of a drive never interrupted; the exported bundle verifies against the store, and no early run's
folder or withdrawal note is left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from crash_point_driver import DEFENDER
from trainarena.operations.cancelling import cancel_tournament
from trainarena.records.bundle import export_bundle
from trainarena.records.verify import verify_directory
from trainarena.runs import tournament_dir
from trainarena.settings import Settings
from trainarena.store import AttemptStatus, get_tournament_by_name, open_store, stored_weights, tournament_runs
from trainarena.store.log_tables import LogEntry

# Two driver processes a test, whole (scripted) tournaments: seconds each, as the concurrent drivers'.
pytestmark = pytest.mark.slow

DRIVER = Path(__file__).with_name("crash_point_driver.py")
sys.path.insert(0, str(DRIVER.parent / "records"))

from recorded_store import settings_for  # noqa: E402

# The crash points, and whether the run in hand when the driver died is played again (it was not
# committed yet) or not (committed before, or no run in hand).
PLAYED_AGAIN = {"training": True, "boss": True, "storing": True, "signing": True,
                "stored": False, "round": False, "finishing": False}  # fmt: skip


def _drive(data_dir: Path, point: str, parallel: int = 1) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(DRIVER.parent), *sys.path])}
    return subprocess.run([sys.executable, str(DRIVER), str(data_dir), str(data_dir.parent / "executions"), point, str(parallel)],
                          capture_output=True, text=True, env=environment, timeout=120)


def _outcome(settings: Settings) -> tuple:
    """Everything the tournament decided and signed, with attempt numbers left out of the log's keys
    (the run played again is logged under its second attempt)."""
    with open_store(settings) as store, store.session() as session:
        tournament = get_tournament_by_name(session, "crashy")
        runs = tuple((r.task.match.round.index, r.task.match.match_id, r.task.index, r.competitor.name, r.status,
                      None if r.evaluation is None else r.evaluation.score) for r in tournament_runs(session, tournament.id))
        keys = Counter(key.split(":attempt:")[0] for key in session.scalars(select(LogEntry.key)))
        champion = None if tournament.champion_after is None else tournament.champion_after.name
        return (tournament.status, champion, tournament.outcome_reason, stored_weights(session, tournament.id),
                tournament.weight_remainder, runs, keys)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    data_dir = tmp_path_factory.mktemp("uninterrupted") / "data"
    finished = _drive(data_dir, "none")
    assert finished.returncode == 0, finished.stderr
    return _outcome(settings_for(data_dir))


def _crash(point: str, tmp_path: Path, parallel: int = 1) -> tuple[Settings, list[int]]:
    """The driver killed at ``point``; the settings of its store and the runs it left running."""
    data_dir = tmp_path / "data"
    crashed = _drive(data_dir, point, parallel)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    settings = settings_for(data_dir)
    with open_store(settings) as store, store.session() as session:
        tournament = get_tournament_by_name(session, "crashy")
        assert tournament.status != "finished"
        return settings, [r.id for r in tournament_runs(session, tournament.id) if r.status == "running"]


def _resume(settings: Settings, tmp_path: Path, left_running: list[int], parallel: int = 1) -> int:
    """The next drive, to the end: it says how many runs were cut short, and every run left running is
    played again as its second attempt, the first one interrupted, its output removed; the exported
    records verify. Returns the tournament's id."""
    resumed = _drive(settings.data_dir, "none", parallel)
    assert resumed.returncode == 0, resumed.stderr
    said = json.loads(resumed.stdout.splitlines()[0])["resumed"]
    assert said["runs_interrupted"] == len(left_running) <= said["runs_total"]
    with open_store(settings) as store, store.session() as session:
        tournament_id = get_tournament_by_name(session, "crashy").id
        for run in tournament_runs(session, tournament_id):
            expected = [AttemptStatus.INTERRUPTED, run.status] if run.id in left_running else [run.status]
            assert [a.status for a in run.attempt_records] == expected
            assert run.counted_attempt is run.attempt_records[-1]
        work = tournament_dir(settings.work_dir, tournament_id)
        assert not any((work / f"run-{run_id}" / "attempt-1" / "output").exists() for run_id in left_running)
        export_bundle(session, settings, tournament_id, tmp_path / "bundle")
        # Every stored run's folder has its result.json, the run killed before it wrote its own too.
        assert all((tournament_dir(settings.work_dir, tournament_id) / f"run-{run.id}" / f"attempt-{run.attempts}" / "result.json").is_file()
                   for run in tournament_runs(session, tournament_id) if run.counted_attempt is not None)
    report = verify_directory(tmp_path / "bundle")
    assert report.ok, report.failures
    assert sorted(path.name for path in work.iterdir() if not path.name.startswith("run-")) == []  # no notes, no early runs
    return tournament_id


def _executions(tmp_path: Path) -> Counter[int]:
    """How often each run was trained (an early run, before its round existed, has a negative id)."""
    return Counter(int(line.split()[0]) for line in (tmp_path / "executions").read_text().splitlines())


@pytest.mark.parametrize("point", list(PLAYED_AGAIN))
def test_a_driver_killed_anywhere_is_resumed_to_the_uninterrupted_outcome_and_record(
    point: str, tmp_path: Path, uninterrupted: tuple
) -> None:
    settings, left_running = _crash(point, tmp_path)
    assert len(left_running) == PLAYED_AGAIN[point]
    tournament_id = _resume(settings, tmp_path, left_running)
    for run_id in left_running:  # the try cut short keeps its logs
        assert (tournament_dir(settings.work_dir, tournament_id) / f"run-{run_id}" / "attempt-1" / "logs").is_dir()
    assert _outcome(settings) == uninterrupted
    executions = _executions(tmp_path)  # every run trained once, but the one cut short: twice
    assert {run for run, times in executions.items() if times > 1} == set(left_running)
    assert set(executions.values()) <= {1, 2}


@pytest.mark.parametrize("resumed_with", [2, 1], ids=["two-slots", "one-slot"])
def test_a_driver_killed_while_a_run_trains_early_is_resumed_to_the_same_outcome(
    resumed_with: int, tmp_path: Path, uninterrupted: tuple
) -> None:
    """Two slots: the defender's boss runs train early during the knockout, and the driver dies in one.
    Early runs are lost with it (trained again, once adopted) and their folders cleared, also by a
    drive that trains none early (one slot); no stored run is trained again."""
    settings, left_running = _crash("early", tmp_path, parallel=2)
    assert min(_executions(tmp_path)) < 0 and (settings.work_dir / "tournament-1" / "early").is_dir()
    _resume(settings, tmp_path, left_running, parallel=resumed_with)
    assert _outcome(settings) == uninterrupted
    stored_twice = {run for run, times in _executions(tmp_path).items() if run > 0 and times > 1}
    assert stored_twice == set(left_running)


def test_a_driver_killed_while_an_adopted_early_run_trains_keeps_its_attempts_logs(tmp_path: Path, uninterrupted: tuple) -> None:
    """The boss round's claim adopted the defender's run trained early, still training, and the driver
    dies: that run's first attempt is interrupted as any run's, and keeps its logs as any run's (they
    were in the early run's folder, which the next drive clears)."""
    settings, left_running = _crash("adopted", tmp_path, parallel=2)
    assert min(_executions(tmp_path)) < 0
    tournament_id = _resume(settings, tmp_path, left_running, parallel=2)
    assert _outcome(settings) == uninterrupted
    assert (_adopted_logs(settings, tournament_id, left_running) / "stdout.log").read_text() == f"{DEFENDER} starting\n"


def _adopted_logs(settings: Settings, tournament_id: int, left_running: list[int]) -> Path:
    """The logs folder of the defender's run whose early run its round adopted (left running)."""
    with open_store(settings) as store, store.session() as session:
        [adopted] = [r.id for r in tournament_runs(session, tournament_id) if r.id in left_running and r.competitor.name == DEFENDER]
    return tournament_dir(settings.work_dir, tournament_id) / f"run-{adopted}" / "attempt-1" / "logs"


def test_a_cancel_after_a_driver_killed_while_an_adopted_early_run_trains_keeps_its_attempts_logs(tmp_path: Path) -> None:
    """A cancelled tournament has no next drive: the cancel withdraws the killed driver's attempts and
    clears what it left, and the adopted run's withdrawn attempt keeps its logs as any run's."""
    settings, left_running = _crash("adopted", tmp_path, parallel=2)
    with open_store(settings) as store:
        tournament_id = cancel_tournament(store, settings, 1, "killed mid-way").id
    assert (_adopted_logs(settings, tournament_id, left_running) / "stdout.log").read_text() == f"{DEFENDER} starting\n"
    assert sorted(path.name for path in tournament_dir(settings.work_dir, tournament_id).iterdir() if not path.name.startswith("run-")) == []
