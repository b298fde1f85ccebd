"""Preference tuning (DPO): rows of a prompt with a chosen and a rejected completion; scored by the DPO
loss of the trained policy against the base model on the hidden split (lower is better)."""

from __future__ import annotations

import json
from pathlib import Path

from trainarena.contract import Direction, TaskType
from trainarena.settings import Settings
from trainarena.tasks.base import Evaluation, PreparedTask, TaskDefinition
from trainarena.tasks.dpo.data import clean_rows
from trainarena.tasks.dpo.spec import DpoDatasetSpec, render_triple
from trainarena.tasks.instruct.data import load_rows, split_rows, write_jsonl

TRAIN_FILE = "train.jsonl"
HIDDEN_FILE = "hidden.jsonl"
SPEC_FILE = "dataset_spec.json"
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
        write_jsonl(train, Path(train_dir) / TRAIN_FILE)
        write_jsonl(hidden, Path(hidden_dir) / HIDDEN_FILE)
        (Path(train_dir) / SPEC_FILE).write_text(json.dumps(script_spec, indent=2, sort_keys=True))
        return PreparedTask(Path(train_dir) / TRAIN_FILE, script_spec, Path(hidden_dir) / HIDDEN_FILE, len(train), len(hidden))

    def evaluate(self, task: TaskDefinition, prepared: PreparedTask, artifact_dir: Path, settings: Settings) -> Evaluation:
        from trainarena.tasks.isolation import evaluate_in_child

        request = {
            "hidden_file": str(prepared.hidden_file),
            "dataset_spec": prepared.dataset_spec,
            "artifact_dir": str(artifact_dir),
            "base_model": task.base_model,
            "beta": settings.data.dpo_beta,
        }
        return evaluate_in_child(self.task_type, self.direction, request, settings.data)


def plugin() -> DpoTask:
    return DpoTask()
