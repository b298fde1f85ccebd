"""Reinforcement learning from reward functions (GRPO): prompts, an optional extra column, and weighted
reward functions written in Python. Scored by sampling from the trained model on the hidden prompts and
rewarding the completions (in the sandbox), minus a KL penalty to the base model (higher is better)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

from trainarena.contract import Direction, TaskType
from trainarena.settings import DataRules, Settings
from trainarena.tasks.base import Evaluation, PreparedTask, TaskDefinition, count_dropped
from trainarena.tasks.grpo.rewards import RewardError, RewardSandbox, score_rewards
from trainarena.tasks.grpo.spec import GrpoDatasetSpec, RewardFunction, render_prompt
from trainarena.tasks.split import normalise, split_rows
from trainarena.tasks.text.rows import TRAIN_FILE, clean_rows, load_rows, write_split, written_keys

__all__ = [
    "GrpoDatasetSpec",
    "GrpoTask",
    "RewardError",
    "RewardFunction",
    "group_key",
    "plugin",
    "render_prompt",
    "sampling_settings",
]


def sampling_settings(rules: DataRules) -> dict[str, Any]:
    """The fixed generation settings of GRPO evaluation (also told to scripts in the dataset spec)."""
    return {
        "max_new_tokens": rules.grpo_eval_max_new_tokens,
        "temperature": rules.grpo_eval_temperature,
        "top_p": rules.grpo_eval_top_p,
        "seed": rules.grpo_eval_seed,
        "prompts": rules.grpo_eval_prompts,
        "samples": rules.grpo_eval_samples,
    }


class GrpoTask:
    task_type = TaskType.GRPO
    direction = Direction.HIGHER

    def prepare(self, task: TaskDefinition, train_dir: Path, hidden_dir: Path, settings: Settings) -> PreparedTask:
        spec = GrpoDatasetSpec.from_dict(task.dataset, settings.data.reward_max_functions)
        rows, dropped = clean_rows(spec.source, load_rows(spec, settings.data), spec.columns(), ("prompt",), settings.data)
        check_rewards_on_samples(spec, rows[: settings.data.reward_sample_rows], RewardSandbox.from_rules(settings.sandbox, settings.data))
        train, hidden = split_rows(rows, settings.data, partial(group_key, spec), spec.source)
        dropped_rows = count_dropped(dropped)
        script_spec = spec.for_script(TRAIN_FILE, settings.data.grpo_kl_coef, sampling_settings(settings.data), dropped_rows)
        return write_split(train, hidden, script_spec, train_dir, hidden_dir, dropped)

    def group_keys(self, prepared: PreparedTask) -> tuple[list[str], list[str]]:
        spec = GrpoDatasetSpec.from_dict(prepared.dataset_spec)
        return written_keys(prepared, partial(group_key, spec))

    def evaluate(self, task: TaskDefinition, prepared: PreparedTask, artifact_dir: Path, settings: Settings) -> Evaluation:
        from trainarena.tasks.child_evaluation import evaluate_artifact

        return evaluate_artifact(self, task, prepared, artifact_dir, settings, kl_coef=settings.data.grpo_kl_coef, sampling=sampling_settings(settings.data), reward_sandbox=RewardSandbox.from_rules(settings.sandbox, settings.data).to_dict())


def group_key(spec: GrpoDatasetSpec, row: Mapping[str, object]) -> str:
    """The split's group: the normalised prompt."""
    return normalise(str(row[spec.field_prompt]))


def check_rewards_on_samples(spec: GrpoDatasetSpec, rows: list[dict[str, str]], sandbox: RewardSandbox) -> None:
    """Run every reward function (in the sandbox) on sample rows, each with two completions: the extra
    column's value (or a number) and an empty string. Raises RewardError naming a failing function."""
    prompts, completions, extra = [], [], []
    for row in rows:
        value = row.get(spec.field_extra, "") if spec.field_extra else ""
        for completion in (value or "42", ""):
            prompts.append(render_prompt(spec, row))
            completions.append(completion)
            extra.append(value)
    columns = {spec.field_extra: extra} if spec.field_extra else {}
    score_rewards(spec.reward_functions, prompts, completions, columns, sandbox)


def plugin() -> GrpoTask:
    return GrpoTask()
