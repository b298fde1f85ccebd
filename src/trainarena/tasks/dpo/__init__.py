"""Preference tuning (DPO): rows of a prompt with a chosen and a rejected completion; scored by the DPO
loss of the trained policy against the base model on the hidden split (lower is better)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path

from trainarena.contract import Direction, TaskType
from trainarena.settings import Settings
from trainarena.tasks.base import Evaluation, PreparedTask, TaskDefinition, count_dropped
from trainarena.tasks.dpo.spec import DpoDatasetSpec, render_triple
from trainarena.tasks.split import normalise, split_rows
from trainarena.tasks.text.rows import TRAIN_FILE, clean_rows, load_rows, write_split, written_keys

REQUIRED_ROLES = ("prompt", "chosen", "rejected")

__all__ = ["DpoDatasetSpec", "DpoTask", "group_key", "plugin", "render_triple"]


class DpoTask:
    task_type = TaskType.DPO
    direction = Direction.LOWER

    def prepare(self, task: TaskDefinition, train_dir: Path, hidden_dir: Path, settings: Settings) -> PreparedTask:
        spec = DpoDatasetSpec.from_dict(task.dataset)
        rows, dropped = clean_rows(spec.source, load_rows(spec, settings.data), spec.columns(), REQUIRED_ROLES, settings.data,
                                   partial(same_answers, spec))  # fmt: skip
        train, hidden = split_rows(rows, settings.data, partial(group_key, spec), spec.source)
        script_spec = spec.for_script(TRAIN_FILE, settings.data.dpo_beta, count_dropped(dropped))
        return write_split(train, hidden, script_spec, train_dir, hidden_dir, dropped)

    def group_keys(self, prepared: PreparedTask) -> tuple[list[str], list[str]]:
        spec = DpoDatasetSpec.from_dict(prepared.dataset_spec)
        return written_keys(prepared, partial(group_key, spec))

    def evaluate(self, task: TaskDefinition, prepared: PreparedTask, artifact_dir: Path, settings: Settings) -> Evaluation:
        from trainarena.tasks.child_evaluation import evaluate_artifact

        return evaluate_artifact(self, task, prepared, artifact_dir, settings, beta=settings.data.dpo_beta)


def group_key(spec: DpoDatasetSpec, row: Mapping[str, object]) -> str:
    """The split's group: the normalised prompt (not the system text), so every pair of answers to one
    prompt lands on one side."""
    return normalise(str(row[spec.field_prompt]))


def same_answers(spec: DpoDatasetSpec, row: Mapping[str, object]) -> str | None:
    """Why a row cannot tell a better policy from a worse one: its chosen and rejected completions are
    the same text, so its DPO loss is ln 2 for every model (the two log-ratios cancel)."""
    _prompt, chosen, rejected = render_triple(spec, row)
    return "chosen and rejected are the same text" if chosen == rejected else None


def plugin() -> DpoTask:
    return DpoTask()
