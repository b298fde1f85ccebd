"""A run stopped on request gets its grace to save work (SIGTERM, then SIGKILL), unless the request is a
``StopAtOnce``: then nothing of it is kept and it is killed at once (early_runs drops such runs)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from trainarena.contract import RunStatus
from trainarena.execution.local import _GroupTerminator
from trainarena.execution.supervise import STOPPED_REASON, Launch, StopAtOnce, stop_when, supervise

GRACE_SECONDS = 5.0
# Ignores SIGTERM, as a script deaf to the platform's stop would: only SIGKILL ends it.
DEAF_SCRIPT = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"


def _stopped_after(event: threading.Event, tmp_path: Path) -> float:
    launch = Launch(argv=[sys.executable, "-c", DEAF_SCRIPT], env={}, cwd=tmp_path, log_dir=tmp_path / "logs",
                    budget_seconds=60.0, grace_seconds=GRACE_SECONDS, log_max_bytes=10_000, log_tail_chars=200)
    threading.Timer(0.5, event.set).start()
    started = time.monotonic()
    with stop_when(event):
        result = supervise(launch, _GroupTerminator, time.time())
    assert (result.failure_reason or "").startswith(f"{STOPPED_REASON}.\n")  # "stopped" once: not "...; the run was stopped"
    return time.monotonic() - started


class _GraceStop(StopAtOnce):
    """A stop set for a reason that is not 'at once' (as run_slots' early runs under a drive's stop)."""

    def at_once(self) -> bool:
        return False


@pytest.mark.parametrize(("event", "grace_waited"), [(threading.Event(), True), (StopAtOnce(), False), (_GraceStop(), True)])
def test_a_stop_waits_the_grace_unless_it_is_a_stop_at_once(event: threading.Event, grace_waited: bool, tmp_path: Path) -> None:
    seconds = _stopped_after(event, tmp_path)
    assert (seconds >= GRACE_SECONDS) is grace_waited


def test_a_stop_at_once_during_the_grace_of_a_timed_out_run_kills_it_then(tmp_path: Path) -> None:
    launch = Launch(argv=[sys.executable, "-c", DEAF_SCRIPT], env={}, cwd=tmp_path, log_dir=tmp_path / "logs",
                    budget_seconds=1.0, grace_seconds=GRACE_SECONDS, log_max_bytes=10_000, log_tail_chars=200)
    event = StopAtOnce()
    threading.Timer(1.5, event.set).start()  # half a second into the grace
    started = time.monotonic()
    with stop_when(event):
        result = supervise(launch, _GroupTerminator, time.time())
    assert result.status is RunStatus.TIMED_OUT and "stopped on request within the grace" in (result.failure_reason or "")
    assert time.monotonic() - started < GRACE_SECONDS


class _AskedAtOnceLater(StopAtOnce):
    """A stop with the grace (a drive's, around an early run) that comes to ask at once (the run dropped)."""

    asked_at_once = False

    def at_once(self) -> bool:
        return self.asked_at_once and self.is_set()


def test_a_stop_with_the_grace_asked_at_once_during_the_grace_kills_the_run_then(tmp_path: Path) -> None:
    event = _AskedAtOnceLater()

    def ask_at_once() -> None:
        event.asked_at_once = True

    threading.Timer(1.0, ask_at_once).start()  # half a second into the grace
    assert _stopped_after(event, tmp_path) < GRACE_SECONDS
