"""A run never plays without a deadline: a task whose budget is not a finite positive number (a round
made by an older build may hold one) fails at once, naming the budget, before anything is prepared or
started."""

from __future__ import annotations

import pytest

from trainarena.contract import RunStatus, TaskType
from trainarena.pipeline import SandboxedExecutor
from trainarena.runs import CompetitorInfo
from trainarena.settings import Settings
from trainarena.tasks.base import TaskDefinition


class NeverRun:
    name = "never"

    def run(self, job):
        raise AssertionError("a run without a deadline must not start")

    def close(self) -> None:
        pass


@pytest.mark.parametrize("budget", [float("inf"), float("nan"), -1.0, 0])
def test_a_budget_with_no_deadline_fails_before_anything_starts(tmp_path, monkeypatch, budget):
    executor = SandboxedExecutor(Settings(data_dir=tmp_path), NeverRun())

    def nothing_else(*args):
        raise AssertionError("neither the script nor the task is looked at")

    monkeypatch.setattr(executor, "_submission_dir", nothing_else)
    monkeypatch.setattr(executor._preparer, "prepare", nothing_else)
    task = TaskDefinition("t", TaskType.INSTRUCT, "unused-model", {"source": "unused.jsonl"}, budget)
    competitor = CompetitorInfo("c", "repo", "0" * 40, "tree", "train.py")
    report = executor.run_task(competitor, task, tmp_path / "run", "run-1")
    assert report.status is RunStatus.FAILED and report.evaluation is None
    assert report.failure_reason.startswith(f"task: budget_seconds must be a positive number, got {budget!r}")
    assert "no deadline" in report.failure_reason and "finite budget" in report.failure_reason
    assert not (tmp_path / "run").exists()
