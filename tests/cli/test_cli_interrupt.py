"""Ctrl-C during `tournament run` leaves at once, naming the command to run again (not `demo`)."""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path

import pytest
from rich.console import Console

from trainarena.cli import pool_tournaments
from trainarena.cli.demo import EXIT_STOPPED_AT_ONCE, stop_at_once_on_ctrl_c


class Exited(Exception):
    pass


@pytest.fixture
def ctrl_c(monkeypatch: pytest.MonkeyPatch):
    """Press Ctrl-C: run the SIGINT handler installed meanwhile; returns (what it printed, exit status)."""
    previous = signal.getsignal(signal.SIGINT)

    def exit_now(status: int) -> None:
        raise Exited(status)

    monkeypatch.setattr(os, "_exit", exit_now)

    def press(console_output: io.StringIO) -> tuple[str, int]:
        with pytest.raises(Exited) as exited:
            signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
        return console_output.getvalue(), exited.value.args[0]

    yield press
    signal.signal(signal.SIGINT, previous)


def test_the_message_names_the_command_that_was_running(ctrl_c) -> None:
    output = io.StringIO()
    stop_at_once_on_ctrl_c(Console(file=output, width=200), "trainarena tournament run 7")
    said, status = ctrl_c(output)
    assert "run `trainarena tournament run 7` again to resume" in said and "demo" not in said
    assert status == EXIT_STOPPED_AT_ONCE


class NoExecutor:
    def close(self) -> None:
        pass


def test_tournament_run_names_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    named: list[str] = []

    def played(*_args, **_kwargs):
        raise Exited("played")  # stands for the run being interrupted

    monkeypatch.setattr(pool_tournaments, "stop_at_once_on_ctrl_c", lambda _console, command: named.append(command))
    monkeypatch.setattr(pool_tournaments, "make_executor", lambda *_args, **_kwargs: NoExecutor())
    monkeypatch.setattr(pool_tournaments, "run_pool_tournament", played)
    with pytest.raises(Exited):
        pool_tournaments.run_command(7, parallel=1, unsafe=False, wait=True, json_output=False)
    assert named == ["trainarena tournament run 7"]
