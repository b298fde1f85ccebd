"""Several driver processes on one store (tests/store/driver_process.py): one tournament, every run
executed exactly once per attempt, one champion; a killed driver's tournament taken over."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from trainarena.store import ChampionHistory, get_tournament_by_name, open_store_url, tournament_runs

DRIVER = Path(__file__).with_name("driver_process.py")
DRIVERS = 4


@pytest.fixture
def url(url_on_each_backend: str) -> str:
    return url_on_each_backend


def _start(url: str, tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    argv = [sys.executable, str(DRIVER), url, str(tmp_path / "data"), str(tmp_path / "executions"), *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen[str]) -> tuple[dict, str]:
    stdout, stderr = proc.communicate(timeout=300)
    return _checked(proc, stdout, stderr)


def _checked(proc: subprocess.Popen[str], stdout: str, stderr: str) -> tuple[dict, str]:
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
    return json.loads(stdout), stderr


def _executions(tmp_path: Path) -> list[tuple[str, int, int, int]]:
    lines = (tmp_path / "executions").read_text().splitlines()
    return [(what, int(run), int(attempt), int(pid)) for what, run, attempt, pid in (line.split() for line in lines)]


def _stored_runs(url: str) -> list:
    with open_store_url(url, migrate=False) as store, store.session() as session:
        tournament = get_tournament_by_name(session, "t")
        assert tournament is not None and tournament.status == "finished"
        return tournament_runs(session, tournament.id)


def _crownings(url: str) -> list[str]:
    with open_store_url(url, migrate=False) as store, store.session() as session:
        return [row.competitor.name for row in session.scalars(select(ChampionHistory))]


@pytest.mark.slow
def test_drivers_started_at_once_finish_one_tournament_running_each_attempt_once(url: str, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    ready = [tmp_path / f"ready-{i}" for i in range(DRIVERS)]
    procs = [_start(url, tmp_path, "--gate", str(gate), "--ready", str(flag)) for flag in ready]
    deadline = time.monotonic() + 120
    while not all(flag.exists() for flag in ready) and time.monotonic() < deadline:
        time.sleep(0.01)
    gate.touch()  # all at once: a fresh store, nobody has migrated or set up anything
    outputs = [proc.communicate(timeout=300) for proc in procs]  # every pipe drained before any check
    results = [_checked(proc, *output) for proc, output in zip(procs, outputs, strict=True)]
    assert {result["champion"] for result, _ in results} == {"c0"}
    runs = _stored_runs(url)
    executions = _executions(tmp_path)
    starts = Counter((run, attempt) for what, run, attempt, _ in executions if what == "start")
    ends = Counter((run, attempt) for what, run, attempt, _ in executions if what == "end")
    assert starts == ends == Counter({(run.id, 1): 1 for run in runs})
    for run in runs:
        assert (run.status, run.attempts, run.counted_attempt.number) == ("succeeded", 1, 1)
        assert run.evaluation is not None and run.artifact_path and run.log_path
    assert _crownings(url) == ["c0"]


@pytest.mark.slow
@pytest.mark.serial  # the survivor must start within the killed driver's 3 s lease; under load it did not
@pytest.mark.parametrize("reaped", [False, True], ids=["lease-expires", "dead-process-on-this-host"])
def test_a_killed_drivers_running_run_is_taken_over_as_a_second_attempt(url: str, tmp_path: Path, reaped: bool) -> None:
    # Unreaped, the killed driver is a zombie whose pid still exists: the survivor must wait out its
    # (short) lease. Reaped, its pid is gone: the survivor takes over at once, despite a 60 s lease.
    lease = [] if reaped else ["--lease-seconds", "3", "--heartbeat-seconds", "0.5"]
    first = _start(url, tmp_path, "--hang", "--parallel", "1", *lease)
    deadline = time.monotonic() + 120
    while not (tmp_path / "executions").exists() and time.monotonic() < deadline:
        assert first.poll() is None, first.communicate()[1]
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)  # mid-run: its run is RUNNING, its lease held
    if reaped:
        first.communicate()
    started = time.monotonic()
    result, stderr = _finish(_start(url, tmp_path, *lease))
    waited = time.monotonic() - started
    if not reaped:
        first.communicate()
    assert result["champion"] == "c0"
    if reaped:
        assert waited < 30
    else:
        assert f"waiting for {socket.gethostname()} pid {first.pid}" in stderr
    [(what, killed_run, attempt, pid)] = [line for line in _executions(tmp_path) if line[3] == first.pid]
    assert (what, attempt) == ("start", 1)
    runs = _stored_runs(url)
    taken_over = next(run for run in runs if run.id == killed_run)
    interrupted, second = taken_over.attempt_records
    assert (interrupted.number, interrupted.status, interrupted.driver_pid) == (1, "interrupted", first.pid)
    assert interrupted.evaluation is None and interrupted.artifact_path is None
    assert "stopped before it finished" in (interrupted.failure_reason or "")
    assert (second.number, second.status, second.driver_pid) == (2, "succeeded", result["pid"])
    assert taken_over.counted_attempt.id == second.id and taken_over.evaluation is second.evaluation
    assert "attempt-2" in (taken_over.artifact_path or "")
    # The interrupted attempt's output is deleted (nothing of it is scored or kept), its logs kept.
    killed_dir = Path(taken_over.artifact_path or "").parent / "attempt-1"
    assert not (killed_dir / "output").exists() and (killed_dir / "logs" / "partial").is_file()
    starts = Counter((run, attempt) for what, run, attempt, _ in _executions(tmp_path) if what == "start")
    attempts = Counter((run.id, attempt.number) for run in runs for attempt in run.attempt_records)
    assert starts == attempts and set(starts.values()) == {1}
    assert all(run.attempts == 1 for run in runs if run.id != killed_run)
