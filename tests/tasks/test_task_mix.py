"""The text tournament's task mix: types drawn by weight from the task seed, the boss round covering every
enabled type, and the settings that configure it."""

from __future__ import annotations

from collections import Counter

import pytest
from pydantic import ValidationError

from trainarena.contract import TaskType
from trainarena.demo.text import demo_task_source
from trainarena.engine.model import Stage
from trainarena.settings import TaskMixRules
from trainarena.tasks import get_task_type


def test_boss_round_plays_every_enabled_type_once(assets):
    source = demo_task_source(assets, 30.0, TaskMixRules())
    boss = [source("text", Stage.BOSS, "boss", index, 1000 + index) for index in range(3)]
    assert sorted(t.task_type.value for t in boss) == ["dpo", "grpo", "instruct"]


def test_other_rounds_draw_types_by_weight_reproducibly(assets):
    source = demo_task_source(assets, 30.0, TaskMixRules(instruct=0.5, dpo=0.25, grpo=0.0, chat=0.25))
    drawn = [source("text", Stage.KNOCKOUT, "m", 0, seed) for seed in range(400)]
    counts = Counter(t.task_type for t in drawn)
    assert TaskType.GRPO not in counts and 150 <= counts[TaskType.INSTRUCT] <= 250
    assert 60 <= counts[TaskType.CHAT] <= 140 and 60 <= counts[TaskType.DPO] <= 140
    assert [t.name for t in drawn[:20]] == [source("text", Stage.KNOCKOUT, "m", 0, s).name for s in range(20)]


def test_every_drawn_dataset_spec_is_valid_for_its_type(assets):
    source = demo_task_source(assets, 30.0, TaskMixRules(chat=0.2))
    for seed in range(40):
        task = source("text", Stage.GROUP, "g", 0, seed)
        plugin = get_task_type(task.task_type)
        spec_class = {"instruct": "InstructDatasetSpec", "dpo": "DpoDatasetSpec", "grpo": "GrpoDatasetSpec", "chat": "ChatDatasetSpec"}
        module = __import__(type(plugin).__module__, fromlist=["x"])
        getattr(module, spec_class[task.task_type.value]).from_dict(task.dataset)
        assert task.budget_seconds == 30.0 and task.base_model == str(assets.tiny_llama)


def test_the_mix_needs_one_enabled_type_and_orders_by_weight():
    with pytest.raises(ValidationError, match="at least one task type"):
        TaskMixRules(instruct=0, dpo=0, grpo=0, chat=0)
    assert [name for name, _ in TaskMixRules(instruct=0.1, dpo=0.5, grpo=0.2, chat=0).enabled()] == ["dpo", "grpo", "instruct"]
