"""Serve's log counts rounds from 1 as every other human-readable output does, and a failed run's line
says why it failed (the QA found "crasher on instruct-letters: failed (score -)" with no reason)."""

from __future__ import annotations

import threading

from operator_data import FakeExecutor, OperatorData

from trainarena.operations.serving import ServeEvent, Serving
from trainarena.runs import ProgressEvent, RunStatus
from trainarena.store import open_store


def _logged(operator_data: OperatorData, event: ProgressEvent) -> ServeEvent:
    events: list[ServeEvent] = []
    with open_store(operator_data.settings) as store:
        Serving(store, operator_data.settings, FakeExecutor(), events.append, threading.Event()).progress(event)
    assert len(events) == 1
    return events[0]


def test_first_round_is_logged_as_round_1_and_json_keeps_the_stored_index(operator_data: OperatorData) -> None:
    logged = _logged(operator_data, ProgressEvent("round_created", "week-1", round_index=0, stage="knockout",
                                                  runs_total=4))
    assert "knockout round 1 created, 4 runs" in logged.message
    assert logged.fields["round_index"] == 0  # stored meaning: counts from 0


def test_a_failed_run_line_carries_its_short_failure_reason(operator_data: OperatorData) -> None:
    logged = _logged(operator_data, ProgressEvent("run_finished", "week-1", competitor="crasher",
                                                  task_name="instruct-letters", status=RunStatus.FAILED,
                                                  reason="exited with code 1"))
    assert logged.message.endswith("crasher on instruct-letters: failed (score -): exited with code 1")
    assert logged.fields["reason"] == "exited with code 1"


def test_a_timed_out_run_line_is_one_line_without_its_stderr_tail(operator_data: OperatorData) -> None:
    """The whole reason went into the text line: its stderr tail (progress bars, warnings) made one
    event a dozen lines of a log that promises one line per event."""
    whole = ("still running at the budget of 5 s (SIGTERM at the deadline)\n--- stderr tail ---\n"
             "\rLoading weights:   0%|   | 0/38\rLoading weights: 100%|###| 38/38\nWriting model shards: 100%\n")
    logged = _logged(operator_data, ProgressEvent("run_finished", "week-1", competitor="lowrank", task_name="w1",
                                                  status=RunStatus.TIMED_OUT, reason=whole))
    assert logged.message == "week-1: lowrank on w1: timed_out (score -): still running at the budget of 5 s (SIGTERM at the deadline)"
    assert logged.fields["reason"] == whole  # --json keeps it whole, in one escaped line
