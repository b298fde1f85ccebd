"""A recorded tournament driver in a process of its own that SIGKILLs itself at one chosen point of a
drive, for tests/test_driver_crash_points.py: no handler, ``finally`` or lease release runs, exactly as
when the platform's machine or process dies there. Without a crash point it drives to the end.

argv: the data folder, the executions file (one ``RUN ATTEMPT`` line per execution started, shared by
every process of a test), the crash point (a key of ``CRASH_POINTS``, or ``none``), the run slots.
On the first call it registers the entrants and a tournament a default defender holds (so it ends in
a boss round). Its stdout: the ``resumed`` progress event, if any, then ``{"champion": ...}``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent / "records"))

from recorded_store import ENTRANTS, RecordedExecutor, base_model, settings_for, task_source  # noqa: E402

from trainarena import orchestrator  # noqa: E402
from trainarena.early_runs import EarlyRuns  # noqa: E402
from trainarena.engine.model import Stage  # noqa: E402
from trainarena.records.recorder import Recorder, recorder_for  # noqa: E402
from trainarena.reporting.run_detail import write_result_json  # noqa: E402
from trainarena.runs import ProgressEvent, RunReport, RunRequest  # noqa: E402
from trainarena.store import Store, add_competitor, create_tournament, get_tournament_by_name, open_store  # noqa: E402

DEFENDER = "keeper"  # never crowned: it defends the boss round as the demo's default defender does
TOURNAMENT = "crashy"


def killed_here() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def after(function: Callable[..., Any], when: Callable[..., bool] = lambda *args: True) -> Callable[..., Any]:
    """``function``, after which the process is killed when ``when(*its arguments)`` holds."""

    def crashing(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        if when(*args):
            killed_here()
        return result

    return crashing


class CountedExecutor(RecordedExecutor):
    """Appends each execution to the shared file; the process dies in the first run ``crash_in`` says
    to, mid-training (its folder half written). With ``slow_knockout``, alpha's knockout runs take a
    second (the others' do not), so that a second slot is free to train the defender's boss runs early
    meanwhile, whatever the load; with ``early_trains_on``, an early run trains for a minute (the
    driver is killed before it ends)."""

    def __init__(self, data_root: Path, executions: Path, crash_in: Callable[[RunRequest], bool],
                 slow_knockout: bool, early_trains_on: bool) -> None:
        super().__init__(data_root)
        self.executions, self.crash_in = executions, crash_in
        self.slow_knockout, self.early_trains_on = slow_knockout, early_trains_on

    def execute(self, request: RunRequest) -> RunReport:
        with self.executions.open("a") as handle:
            handle.write(f"{request.run_id} {request.attempt}\n")
        report = super().execute(request)
        if self.crash_in(request):
            killed_here()
        if self.slow_knockout and request.stage == Stage.KNOCKOUT and request.competitor.name == "alpha":
            time.sleep(1.0)
        if self.early_trains_on and request.run_id < 0:
            time.sleep(60.0)
        return report


def _killed_once_adopted_while_training(take_over: Callable[..., Any]) -> Callable[..., Any]:
    def crashing(early_runs: EarlyRuns, request: RunRequest) -> Any:
        taken = take_over(early_runs, request)
        if taken is not None and taken[1] is None:  # adopted, and its early run has no report yet
            killed_here()
        return taken

    return crashing


def _second_round(_session: object, _tournament: object, plan: Any, _source: object) -> bool:
    return plan.index == 1


# Where the driver dies: each patches the step it names so the process is killed there.
CRASH_POINTS: dict[str, Callable[[], None]] = {
    # The run's report (evaluated) is added to the store and signed, not committed yet.
    "storing": lambda: setattr(orchestrator, "store_report", after(orchestrator.store_report)),
    "signing": lambda: setattr(Recorder, "run_stored", after(Recorder.run_stored)),
    # The second round's rows are added, not committed yet: between rounds.
    "round": lambda: setattr(orchestrator, "create_round", after(orchestrator.create_round, _second_round)),
    # A run's claim committed, adopting an early run still training: the run's folder is the early run's.
    "adopted": lambda: setattr(EarlyRuns, "take_over", _killed_once_adopted_while_training(EarlyRuns.take_over)),
    # The crowning, weights and outcome added and the decision signed, not committed yet.
    "finishing": lambda: setattr(Recorder, "tournament_finished", after(Recorder.tournament_finished)),
}


def _set_up(store: Store) -> int:
    with store.transaction() as session:
        existing = get_tournament_by_name(session, TOURNAMENT)
        if existing is not None:
            return existing.id
        for name, registration in {**ENTRANTS, DEFENDER: ENTRANTS["beta"] | {"tree_hash": "4" * 40}}.items():
            add_competitor(session, name=name, entrypoint="train.py", **registration)
        return create_tournament(session, name=TOURNAMENT, kind="text", seed=5, entrants=list(ENTRANTS), champion=DEFENDER).id


def main() -> None:
    data_dir, executions, point, parallel = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    settings = settings_for(data_dir)
    crash_in = {"training": lambda request: request.stage == Stage.KNOCKOUT, "boss": lambda request: request.stage == Stage.BOSS,
                "early": lambda request: request.run_id < 0}.get(point, lambda _request: False)  # an early run's id is provisional
    if point in CRASH_POINTS:
        CRASH_POINTS[point]()
    stored = 0

    def on_stored(run_id: int, run_dir: Path) -> None:  # the run committed, its result.json not written yet
        nonlocal stored
        stored += 1
        if point == "stored" and stored == 2:
            killed_here()
        write_result_json(store, run_id, run_dir)  # as the CLI's drives do

    def progress(event: ProgressEvent) -> None:
        if event.kind == "resumed":
            print(json.dumps({"resumed": {"runs_total": event.runs_total, "runs_interrupted": event.runs_interrupted}}), flush=True)

    with open_store(settings) as store:
        tournament_id = _set_up(store)
        finished = orchestrator.drive(
            store, tournament_id, task_source=task_source(base_model(data_dir.parent)),
            executor=CountedExecutor(data_dir.parent, executions, crash_in, slow_knockout=point in ("early", "adopted"),
                                     early_trains_on=point == "adopted"), rules=settings.rules,
            weight_rules=settings.weights, work_dir=settings.work_dir, parallel=parallel, progress=progress,
            on_stored=on_stored, recorder=recorder_for(settings),
        )
    print(json.dumps({"champion": None if finished is None else finished.champion}))


if __name__ == "__main__":
    main()
