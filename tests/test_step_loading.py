"""A driver's claim loads the open round's next pending run only, not the tournament's finished runs:
its cost does not grow with the tournament (docs/benchmarks.md, "Ray cluster", ``scheduling``)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from sqlalchemy import event

from trainarena.contract import Direction, RunStatus, TaskType
from trainarena.engine.model import Finished, Stage
from trainarena.orchestrator import create_tournament, drive
from trainarena.runs import ProgressEvent, RunReport, RunRequest
from trainarena.settings import Settings
from trainarena.store import Run, Store, add_competitor
from trainarena.tasks.base import Evaluation, TaskDefinition

NAMES = [f"c{i:02d}" for i in range(24)]


def task_source(kind: str, stage: Stage, match_id: str, task_index: int, seed: int) -> TaskDefinition:
    return TaskDefinition(f"{stage}-{match_id}-{task_index}", TaskType.INSTRUCT, "tiny", {"source": "fake"}, 1.0, seed)


class InstantExecutor:
    """Every run succeeds at once with a loss fixed by the competitor and the task."""

    def execute(self, request: RunRequest) -> RunReport:
        digest = hashlib.sha256(f"{request.competitor.name}:{request.task.seed}".encode()).digest()
        loss = 2.0 + int.from_bytes(digest[:4], "big") / 2**32
        return RunReport(RunStatus.SUCCEEDED, 0.0, 1.0, evaluation=Evaluation(loss, Direction.LOWER))


@pytest.fixture
def timeline() -> Iterator[list[str]]:
    """The drive's progress events in order, with ``load:<status>`` for every run row loaded between."""
    seen: list[str] = []

    def loaded(run: Run, _context: object) -> None:
        seen.append(f"load:{run.status}")

    event.listen(Run, "load", loaded)
    try:
        yield seen
    finally:
        event.remove(Run, "load", loaded)


def _claims(timeline: list[str]) -> list[list[str]]:
    """The run rows each claim loaded: what was loaded between a run's report being stored and the next
    run starting, when no round was created in between (those steps load the whole record)."""
    claims, current = [], None
    for entry in timeline:
        if entry == "run_finished":
            current = []
        elif entry == "run_started" and current is not None:
            claims.append(current)
            current = None
        elif entry == "round_created":
            current = None
        elif current is not None:
            current.append(entry)
    return claims


def test_a_claim_loads_one_pending_run_however_many_runs_finished(store: Store, settings: Settings,
                                                                  timeline: list[str]) -> None:
    with store.transaction() as session:
        for name in NAMES:
            add_competitor(session, name=name, repo_url=f"https://example.org/{name}.git", commit="f" * 40,
                           tree_hash=f"tree-{name}", source_digest=f"digest-{name}", entrypoint="train.py")
        tid = create_tournament(session, name="t", kind="text", seed=5, entrants=NAMES).id

    def progress(progress_event: ProgressEvent) -> None:
        timeline.append(progress_event.kind)

    finished = drive(store, tid, task_source=task_source, executor=InstantExecutor(), rules=settings.rules,
                     weight_rules=settings.weights, work_dir=settings.work_dir, progress=progress)
    assert isinstance(finished, Finished)
    rounds = timeline.count("round_created")
    runs = timeline.count("run_started")
    assert rounds >= 3  # claims after whole rounds finished are among those checked
    claims = _claims(timeline)
    # Every run but each round's first is claimed by a step of its own, after another run was stored.
    assert len(claims) == runs - rounds
    assert all(claim == ["load:pending"] for claim in claims)
