"""Preference tuning (DPO): rows of a prompt with a chosen and a rejected completion; scored by the DPO
loss of the trained policy against the base model on the hidden split (lower is better)."""

from __future__ import annotations

from pathlib import Path

from trainarena.contract import Direction, TaskType
from trainarena.settings import Settings
from trainarena.tasks.base import Evaluation, PreparedTask, TaskDefinition
from trainarena.tasks.dpo.spec import DpoDatasetSpec, render_triple
from trainarena.tasks.text.rows import TRAIN_FILE, clean_rows, load_rows, split_rows, write_split

REQUIRED_ROLES = ("prompt", "chosen", "rejected")

__all__ = ["DpoDatasetSpec", "DpoTask", "plugin", "render_triple"]


class DpoTask:
    task_type = TaskType.DPO
    direction = Direction.LOWER

    def prepare(self, task: TaskDefinition, train_dir: Path, hidden_dir: Path, settings: Settings) -> PreparedTask:
        spec = DpoDatasetSpec.from_dict(task.dataset)
        rows, dropped = clean_rows(spec.source, load_rows(spec), spec.columns(), REQUIRED_ROLES, settings.data)
        train, hidden = split_rows(rows, settings.data)
        script_spec = spec.for_script(TRAIN_FILE, settings.data.dpo_beta, dropped)
        return write_split(train, hidden, script_spec, train_dir, hidden_dir)

    def evaluate(self, task: TaskDefinition, prepared: PreparedTask, artifact_dir: Path, settings: Settings) -> Evaluation:
        from trainarena.tasks.child_evaluation import evaluate_artifact

        return evaluate_artifact(self, task, prepared, artifact_dir, settings, beta=settings.data.dpo_beta)


def plugin() -> DpoTask:
    return DpoTask()
