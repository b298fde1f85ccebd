"""A serve started again after a crash says, before it plays anything, which tournament it takes up,
at which round, and how many runs the earlier process cut short, and which (the QA found it said nothing)."""

from __future__ import annotations

import threading

from operator_data import FakeExecutor, OperatorData, add_tasks, register_example

from trainarena.operations.serving import ServeEvent, Serving
from trainarena.runs import ProgressEvent, RunReport, RunRequest
from trainarena.settings import ScheduleRules
from trainarena.store import open_store


class CrashingOnce(FakeExecutor):
    """Its first run breaks the platform (the run is left running, as a killed serve leaves it)."""

    def __init__(self) -> None:
        super().__init__()
        self.crashed: str | None = None  # the run it broke, "competitor on task"

    def execute(self, request: RunRequest) -> RunReport:
        if self.crashed is None:
            self.crashed = f"{request.competitor.name} on {request.task.name}"
            raise RuntimeError("the sandbox backend is gone")
        return super().execute(request)


def test_serve_taking_up_a_tournament_a_crash_left_mid_round_logs_one_resumed_line(operator_data: OperatorData) -> None:
    for name in ("baseline", "instruct_only", "torchloop"):
        register_example(operator_data.settings, name)
    settings = operator_data.settings.model_copy(update={"schedule": ScheduleRules(text_pool="weekly", image_enabled=False)})
    add_tasks(operator_data, "t1", "t2")
    executor = CrashingOnce()
    first: list[ServeEvent] = []
    with open_store(settings) as store:
        Serving(store, settings, executor, first.append, threading.Event()).run(once=True)
        assert [e.event for e in first].count("fault") == 1 and "resumed" not in [e.event for e in first]
        created = next(e for e in first if e.event == "created")

        again: list[ServeEvent] = []
        assert Serving(store, settings, executor, again.append, threading.Event()).run(once=True) == 1
    kinds = [e.event for e in again]
    assert kinds.count("resumed") == 1 and kinds.index("resumed") < kinds.index("run_finished")
    resumed = again[kinds.index("resumed")]
    assert resumed.fields["tournament_id"] == created.fields["id"]
    assert resumed.fields["tournament"] == created.fields["name"]
    assert resumed.fields["round_index"] == 0 and resumed.fields["runs_interrupted"] == 1
    left = resumed.fields["runs_left"]
    assert left >= 1
    assert resumed.message == (f"{created.fields['name']} (id {created.fields['id']}): resumed at "
                               f"{resumed.fields['stage']} round 1: {left} runs left, 1 of them cut short and run again "
                               f"({executor.crashed})")
    assert resumed.to_json()["runs_interrupted"] == 1  # the --json line carries the same
    assert resumed.to_json()["cut_short"] == [executor.crashed]


def _resumed_line(operator_data: OperatorData, left: int, interrupted: int, cut_short: tuple[str, ...] = ()) -> str:
    events: list[ServeEvent] = []
    with open_store(operator_data.settings) as store:
        Serving(store, operator_data.settings, FakeExecutor(), events.append, threading.Event()).progress(
            ProgressEvent("resumed", "week-2", tournament_id=7, round_index=1, stage="knockout", runs_total=left,
                          runs_interrupted=interrupted, cut_short=cut_short))
    [event] = events
    return event.message


def test_a_resumed_line_says_when_nothing_was_cut_short_or_the_round_is_played(operator_data: OperatorData) -> None:
    # Stopped on request: nothing was cut short.
    assert _resumed_line(operator_data, 1, 0) == "week-2 (id 7): resumed at knockout round 2: 1 run left, none cut short"
    # Died between rounds: the next step draws the next round (or ends the tournament).
    assert _resumed_line(operator_data, 0, 0) == "week-2 (id 7): resumed at knockout round 2, all its runs played"


def test_a_resumed_line_names_the_first_few_runs_cut_short_and_counts_the_rest(operator_data: OperatorData) -> None:
    two = ("lowrank on q1", "baseline on q2")
    assert _resumed_line(operator_data, 3, 2, two) == (
        "week-2 (id 7): resumed at knockout round 2: 3 runs left, 2 of them cut short and run again "
        "(lowrank on q1, baseline on q2)")
    seven = tuple(f"c{i} on q{i}" for i in range(7))
    assert _resumed_line(operator_data, 9, 7, seven).endswith(
        "7 of them cut short and run again (c0 on q0, c1 on q1, c2 on q2, c3 on q3, c4 on q4, +2 more)")
