"""A script whose manifest leaves a task type out is recorded as failed on that type, with the reason,
and never started; started by hand on one, the instruct_only example exits cleanly saying why."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from trainarena.contract import RunStatus, TaskType
from trainarena.demo.text import examples_root
from trainarena.pipeline import SandboxedExecutor, unsupported_reason
from trainarena.runs import CompetitorInfo
from trainarena.settings import Settings
from trainarena.tasks.base import TaskDefinition

INSTRUCT_ONLY = examples_root() / "instruct_only"


class NeverRun:
    name = "never"

    def run(self, job):
        raise AssertionError("an unsupported task type must not start the script")

    def close(self) -> None:
        pass


def task(task_type: TaskType) -> TaskDefinition:
    return TaskDefinition("t", task_type, "unused-model", {"source": "unused.jsonl"}, 5)


def test_reason_names_the_type_and_the_declared_ones():
    assert unsupported_reason(INSTRUCT_ONLY, task(TaskType.INSTRUCT)) is None
    reason = unsupported_reason(INSTRUCT_ONLY, task(TaskType.DPO))
    assert "does not support dpo tasks" in reason and "task_types: instruct)" in reason
    assert unsupported_reason(examples_root() / "crasher", task(TaskType.GRPO)) is None


def test_executor_records_a_failure_without_running(tmp_path, monkeypatch):
    executor = SandboxedExecutor(Settings(data_dir=tmp_path), NeverRun())
    monkeypatch.setattr(executor, "_submission_dir", lambda competitor: INSTRUCT_ONLY)
    competitor = CompetitorInfo("instruct_only", "repo", "0" * 40, "tree", "train.py")
    report = executor.run_task(competitor, task(TaskType.GRPO), tmp_path / "run", "run-1")
    assert report.status is RunStatus.FAILED and "does not support grpo tasks" in report.failure_reason
    assert report.evaluation is None and not (tmp_path / "run").exists()


def test_the_script_itself_refuses_other_types_with_a_message(tmp_path):
    args = ["--task-type", "chat", "--model", "m", "--dataset", "d", "--dataset-spec", "s", "--output-dir", str(tmp_path),
            "--budget-seconds", "5"]
    done = subprocess.run([sys.executable, str(Path(INSTRUCT_ONLY) / "train.py"), *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "supports instruct tasks only, not chat" in done.stderr
