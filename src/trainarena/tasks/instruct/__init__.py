"""Instruction tuning: rows of instruction (+ input, + system) -> output; scored by eval loss on the
completion tokens of the hidden split (lower is better)."""

from __future__ import annotations

from pathlib import Path

from trainarena.contract import Direction, TaskType
from trainarena.settings import Settings
from trainarena.tasks.base import Evaluation, PreparedTask, TaskDefinition
from trainarena.tasks.instruct.data import load_rows, split_rows, validate_rows, write_jsonl
from trainarena.tasks.instruct.render import render_example, render_prompt, tokenize_example
from trainarena.tasks.instruct.spec import InstructDatasetSpec

TRAIN_FILE = "train.jsonl"
HIDDEN_FILE = "hidden.jsonl"
SPEC_FILE = "dataset_spec.json"

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
        rows = validate_rows(spec, load_rows(spec), settings.data)
        train, hidden = split_rows(rows, settings.data)
        script_spec = spec.for_script(TRAIN_FILE)
        write_jsonl(train, Path(train_dir) / TRAIN_FILE)
        write_jsonl(hidden, Path(hidden_dir) / HIDDEN_FILE)
        _write_json(Path(train_dir) / SPEC_FILE, script_spec)
        return PreparedTask(
            train_file=Path(train_dir) / TRAIN_FILE,
            dataset_spec=script_spec,
            hidden_file=Path(hidden_dir) / HIDDEN_FILE,
            train_rows=len(train),
            hidden_rows=len(hidden),
        )

    def evaluate(self, task: TaskDefinition, prepared: PreparedTask, artifact_dir: Path, settings: Settings) -> Evaluation:
        from trainarena.tasks.isolation import evaluate_in_child

        request = {
            "hidden_file": str(prepared.hidden_file),
            "dataset_spec": prepared.dataset_spec,
            "artifact_dir": str(artifact_dir),
            "base_model": task.base_model,
        }
        return evaluate_in_child(self.task_type, self.direction, request, settings.data)


def plugin() -> InstructTask:
    return InstructTask()


def _write_json(path: Path, data: dict) -> None:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True))
