"""Ctrl-C (SIGINT) or SIGTERM during `tournament run` or `demo`: the signal stops the drive
(``DriverStopped``: its runs killed and withdrawn, its lease released, orchestrator's tests), then
one line names the command to run again (not `demo`), and the process exits 130 or 143; a second
signal leaves at once. A run the platform could not play (its disk full) ends it in one line."""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path

import pytest
import typer
from rich.console import Console

from trainarena.cli import pool_tournaments
from trainarena.cli.demo import EXIT_STOPPED_AT_ONCE, exit_stopped, stop_at_once_on_signals
from trainarena.runs import DiskFull, DriverStopped


class Exited(Exception):
    pass


@pytest.fixture
def exits(monkeypatch: pytest.MonkeyPatch):
    """os._exit raises Exited(status) instead; the signal handlers are restored afterwards."""
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}

    def exit_now(status: int) -> None:
        raise Exited(status)

    monkeypatch.setattr(os, "_exit", exit_now)
    yield
    for number, handler in previous.items():
        signal.signal(number, handler)


@pytest.mark.parametrize(("number", "status"), [(signal.SIGINT, EXIT_STOPPED_AT_ONCE), (signal.SIGTERM, 143)])
def test_a_stop_signal_stops_the_drive_then_says_how_to_resume(exits, number: int, status: int) -> None:
    output = io.StringIO()
    console = Console(file=output, width=200)
    stop_at_once_on_signals(console, "trainarena tournament run 7")
    with pytest.raises(DriverStopped) as stopped:
        signal.getsignal(number)(number, None)  # type: ignore[operator]
    assert stopped.value.signum == number and output.getvalue() == ""  # said once the drive is stopped
    with pytest.raises(Exited) as exited:
        exit_stopped(console, "trainarena tournament run 7", stopped.value)
    said = output.getvalue()
    assert f"interrupted ({signal.Signals(number).name})" in said and "cost no try" in said
    assert "run `trainarena tournament run 7` again to resume" in said and "demo" not in said
    assert exited.value.args[0] == status
    with pytest.raises(Exited) as again:  # a second signal: at once
        signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)  # type: ignore[operator]
    assert again.value.args[0] == 143


class NoExecutor:
    def close(self) -> None:
        pass


def _run_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, played, named: list[str]) -> None:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(pool_tournaments, "stop_at_once_on_signals", lambda _console, command: named.append(command))
    monkeypatch.setattr(pool_tournaments, "make_executor", lambda *_args, **_kwargs: NoExecutor())
    monkeypatch.setattr(pool_tournaments, "run_pool_tournament", played)
    monkeypatch.setattr(pool_tournaments, "tournament_id_of", lambda _store, tournament, _json: int(tournament))  # none is stored
    pool_tournaments.run_command("7", parallel=1, unsafe=False, wait=True, json_output=False)


def test_tournament_run_names_itself_when_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exits,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    named: list[str] = []

    def played(*_args, **_kwargs):
        raise DriverStopped(signal.SIGTERM)  # the drive was stopped by SIGTERM

    with pytest.raises(Exited) as exited:
        _run_command(monkeypatch, tmp_path, played, named)
    assert named == ["trainarena tournament run 7"] and exited.value.args[0] == 143
    assert "run `trainarena tournament run 7` again to resume" in capsys.readouterr().out


def test_tournament_run_stopped_by_a_full_disk_says_so_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    def played(*_args, **_kwargs):
        raise DiskFull("run x not counted: the data directory's disk is full: /data has 0.0 MB free; free space and run again")

    with pytest.raises(typer.Exit) as exited:
        _run_command(monkeypatch, tmp_path, played, [])
    assert exited.value.exit_code == 1
    said = " ".join(capsys.readouterr().err.split())
    assert said == "error: run x not counted: the data directory's disk is full: /data has 0.0 MB free; free space and run again"
