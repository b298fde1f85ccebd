"""A store holding one finished tournament, built in a second with a scripted executor (no training):
long competitor names, long repository URLs and long multi-line failure reasons, the inputs that made
the tables unreadable at 80 columns."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from trainarena.contract import Direction, RunStatus, TaskType
from trainarena.engine.model import Finished, Stage
from trainarena.orchestrator import create_tournament, drive
from trainarena.runs import RunReport, RunRequest, TaskSource, definition_json
from trainarena.settings import Settings
from trainarena.store import Store, add_competitor, open_store
from trainarena.store.pools import add_stored_task
from trainarena.tasks.base import Evaluation, TaskDefinition

LONG_NAME = "honest-baseline-with-a-really-quite-long-competitor-name"
LONG_TOURNAMENT = "weekly-text-tournament-2026-w49-with-the-main-bracket"
LONG_URL = "https://git.example.org/some-research-group/subgroup/" + "very-long-repository-name-" * 3 + "trainer.git"
CRASH_TAIL = "\n".join(
    [
        "[rank0]: [/] brackets in a log are text, not markup",
        "Traceback (most recent call last):",
        '  File "/submission/train.py", line 41, in <module>',
        "    main(arguments_parsed_from_the_command_line_of_the_training_contract)",
        "ZeroDivisionError: division by zero while normalising the learning rate schedule",
    ]
)
# What the sandbox supervisor records for a crash and a budget overrun: a summary, then the log tail.
CRASH_REASON = f"exited with code 1.\n--- stderr tail ---\n{CRASH_TAIL}"
TIMEOUT_REASON = (
    "still running at the budget of 1 s (killed after SIGTERM and the grace period expired).\n"
    "--- stderr tail ---\nstep 1 loss 2.31\nstep 2 loss 2.29\nstep 3 loss 2.27 and still going strong"
)
INVALID_REASON = (
    "artifact: model.bin is a pickle file, which executes code when it is loaded; save the weights "
    "as safetensors (model.safetensors) instead, as docs/contract.md says in its output section"
)
COMPETITORS = {
    LONG_NAME: None,
    "crasher": (RunStatus.FAILED, CRASH_REASON),
    "slowpoke": (RunStatus.TIMED_OUT, TIMEOUT_REASON),
    "hostile": (RunStatus.INVALID, INVALID_REASON),
}


def fake_task(kind: str, stage: Stage, match_id: str, index: int, seed: int) -> TaskDefinition:
    return TaskDefinition(f"instruct-{match_id}-{index}", TaskType.INSTRUCT, "tiny", {"seed": seed}, 1.0, seed)


def long_named_task(kind: str, stage: Stage, match_id: str, index: int, seed: int) -> TaskDefinition:
    """``fake_task`` under a name as long as a stored task's may be (a handle tables must not cut)."""
    task = fake_task(kind, stage, match_id, index, seed)
    return replace(task, name=f"instruction-following-on-a-long-named-dataset-{task.name}")


class ScriptedExecutor:
    """Each competitor fails its own way (``COMPETITORS``); the honest one scores. Every run writes its
    logs as the sandbox would (stdout.log, stderr.log in the run's folder) and the honest one an artifact."""

    def execute(self, request: RunRequest) -> RunReport:
        logs = request.run_dir / "logs"
        logs.mkdir(parents=True)
        (logs / "stdout.log").write_text("starting\n")
        outcome = COMPETITORS[request.competitor.name]
        stderr = "".join(f"stderr line {i}\n" for i in range(1, 41))
        (logs / "stderr.log").write_text(stderr + (f"{CRASH_TAIL}\n" if outcome and outcome[1] == CRASH_REASON else ""))
        times = {"started_at": 1_700_000_000.0, "finished_at": 1_700_000_012.5, "log_path": logs}
        if outcome is not None:
            status, reason = outcome
            return RunReport(status, failure_reason=reason, **times)
        artifact = request.run_dir / "output"
        artifact.mkdir()
        score = 1.0 + request.task.seed % 7 / 10
        return RunReport(RunStatus.SUCCEEDED, artifact_path=artifact, artifact_digest="ab" * 32,
                         evaluation=Evaluation(score, Direction.LOWER), **times)  # fmt: skip


@dataclass(frozen=True)
class FinishedStore:
    data_dir: Path
    tournament_id: int
    finished: Finished


def _add_competitors(store: Store, names: list[str]) -> None:
    with store.transaction() as session:
        for i, name in enumerate(names):
            add_competitor(session, name=name, repo_url=LONG_URL if i == 0 else f"https://github.com/x/{name}",
                           commit=f"{i}" * 40, tree_hash=name, source_digest=name, entrypoint="train.py")  # fmt: skip


def build_finished_store(data_dir: Path, tournament: str = "week-1", task_source: TaskSource = fake_task) -> FinishedStore:
    """The competitors and one finished tournament in ``data_dir`` (``TRAINARENA_DATA_DIR`` must name it)."""
    settings = Settings()
    names = list(COMPETITORS)
    with open_store(settings) as store:
        _add_competitors(store, names)
        with store.transaction() as session:
            tournament_id = create_tournament(session, name=tournament, kind="text", seed=1, entrants=names).id
        finished = drive(store, tournament_id, task_source=task_source, executor=ScriptedExecutor(), rules=settings.rules,
                         weight_rules=settings.weights, work_dir=settings.work_dir)  # fmt: skip
    assert finished is not None
    return FinishedStore(data_dir, tournament_id, finished)


class DiesOnFirstCall(ScriptedExecutor):
    """The platform dies during the tournament's first run (the run is interrupted and run again)."""

    def __init__(self) -> None:
        self.calls = 0

    def execute(self, request: RunRequest) -> RunReport:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("platform died")
        return super().execute(request)


def build_retried_store(tournament: str = "t", task_source: TaskSource = fake_task) -> None:
    """The honest competitor and the crasher in a finished tournament whose first run was interrupted by
    the platform dying and then run again: that run has two attempts (in ``TRAINARENA_DATA_DIR``)."""
    settings = Settings()
    names = [LONG_NAME, "crasher"]
    executor = DiesOnFirstCall()
    kwargs = {"task_source": task_source, "rules": settings.rules, "weight_rules": settings.weights, "work_dir": settings.work_dir}
    with open_store(settings) as store:
        _add_competitors(store, names)
        with store.transaction() as session:
            tournament_id = create_tournament(session, name=tournament, kind="text", seed=1, entrants=names).id
        with pytest.raises(RuntimeError, match="platform died"):
            drive(store, tournament_id, executor=executor, **kwargs)
        assert drive(store, tournament_id, executor=executor, **kwargs) is not None


def add_undrawn_stored_task(session: Session, name: str = "pooled-task", pool: str = "pool", kind: str = "text") -> TaskDefinition:
    """A task stored in a pool (rows only: nothing checked) that no tournament drew: a task with no runs."""
    task = TaskDefinition(name, TaskType.INSTRUCT, "tiny", {"source": "x.jsonl"}, 10.0)
    add_stored_task(session, name=task.name, pool=pool, kind=kind, definition=definition_json(task),
                    base_model_digest="a" * 64, dataset_digest="b" * 64, hidden_digest="c" * 64, train_rows=9, hidden_rows=1)  # fmt: skip
    return task
