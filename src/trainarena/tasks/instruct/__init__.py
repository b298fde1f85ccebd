"""Instruction tuning: rows of instruction (+ input, + system) -> output; scored by eval loss on the
completion tokens of the hidden split (lower is better)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from trainarena.contract import Direction, TaskType
from trainarena.settings import Settings
from trainarena.tasks.base import Evaluation, PreparedTask, TaskDefinition
from trainarena.tasks.instruct.data import group_key, validate_rows
from trainarena.tasks.instruct.render import render_example, render_prompt, tokenize_example
from trainarena.tasks.instruct.spec import InstructDatasetSpec
from trainarena.tasks.split import split_rows
from trainarena.tasks.text.rows import TRAIN_FILE, load_rows, write_split, written_keys

__all__ = [
    "InstructDatasetSpec",
    "InstructTask",
    "plugin",
    "render_example",
    "render_prompt",
    "tokenize_example",
]


class InstructTask:
    task_type = TaskType.INSTRUCT
    direction = Direction.LOWER

    def prepare(self, task: TaskDefinition, train_dir: Path, hidden_dir: Path, settings: Settings) -> PreparedTask:
        spec = InstructDatasetSpec.from_dict(task.dataset)
        rows = validate_rows(spec, load_rows(spec, settings.data), settings.data)
        train, hidden = split_rows(rows, settings.data, partial(group_key, spec), spec.source)
        script_spec = spec.for_script(TRAIN_FILE)
        return write_split(train, hidden, script_spec, train_dir, hidden_dir)

    def group_keys(self, prepared: PreparedTask) -> tuple[list[str], list[str]]:
        return written_keys(prepared, partial(group_key, InstructDatasetSpec.from_dict(prepared.dataset_spec)))

    def evaluate(self, task: TaskDefinition, prepared: PreparedTask, artifact_dir: Path, settings: Settings) -> Evaluation:
        from trainarena.tasks.child_evaluation import evaluate_artifact

        return evaluate_artifact(self, task, prepared, artifact_dir, settings)


def plugin() -> InstructTask:
    return InstructTask()
