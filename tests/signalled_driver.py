"""A tournament driver in a process of its own, stopped as `trainarena tournament run` is (its signal
handling: cli/demo.py), for tests/test_driver_signal_stop.py: b's run trains until stopped (a marker
``training`` says it started), and the withdrawal of its attempt never answers (a store that hangs;
a marker ``withdrawing`` says the clean-up got there), so a second signal lands during the clean-up.
argv: the tournament's id, the markers' folder, the clean-up's time limit in seconds."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from rich.console import Console

from test_driver_signal_stop import Scores, drive_tournament
from trainarena import stopped_attempts
from trainarena.cli import demo
from trainarena.contract import RunStatus
from trainarena.execution.supervise import STOPPED_REASON, current_stop_event
from trainarena.runs import DriverStopped, RunReport, RunRequest
from trainarena.settings import Settings
from trainarena.store import open_store

tournament_id, markers, clean_up_seconds = int(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])


class TrainsUntilStopped(Scores):
    def execute(self, request: RunRequest) -> RunReport:
        if request.competitor.name != "b":
            return super().execute(request)
        (markers / "training").touch()
        stop = current_stop_event()
        while stop is None or not stop.is_set():
            time.sleep(0.01)
        return RunReport(RunStatus.FAILED, 0.0, 1.0, failure_reason=STOPPED_REASON)


def hangs(*_args: object) -> list[tuple[int, int]]:
    (markers / "withdrawing").touch()
    time.sleep(600)
    raise AssertionError("the withdrawal was not cut short")


stopped_attempts.withdraw_own_attempts = hangs  # type: ignore[assignment]
demo.STOP_CLEAN_UP_SECONDS = clean_up_seconds
console, command, settings = Console(stderr=True), f"trainarena tournament run {tournament_id}", Settings()
with open_store(settings) as store:
    demo.stop_at_once_on_signals(console, command)
    try:
        drive_tournament(store, settings, tournament_id, TrainsUntilStopped(), parallel=1)
    except DriverStopped as stopped:
        demo.exit_stopped(console, command, stopped)
