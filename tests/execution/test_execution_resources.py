"""GPU brackets by model size and task type."""

from __future__ import annotations

import pytest

from trainarena.contract import TaskType
from trainarena.execution.resources import assign_devices, gpus_for
from trainarena.settings import ResourceRules

B = 1_000_000_000
RULES = ResourceRules()


@pytest.mark.parametrize(
    ("params", "task_type", "gpus"),
    [
        (5_300_000, TaskType.INSTRUCT, 1),
        (4 * B, TaskType.INSTRUCT, 1),  # the bracket limit is inclusive
        (4 * B + 1, TaskType.CHAT, 2),
        (12 * B, TaskType.INSTRUCT, 2),
        (40 * B, TaskType.INSTRUCT, 4),
        (70 * B, TaskType.INSTRUCT, 8),
        (2 * B, TaskType.DPO, 2),  # x3 -> 6B
        (4 * B, TaskType.DPO, 2),  # x3 -> 12B
        (5 * B, TaskType.DPO, 4),  # x3 -> 15B
        (2 * B, TaskType.GRPO, 1),  # x2 -> 4B
        (6 * B, TaskType.GRPO, 2),  # x2 -> 12B
        (21 * B, TaskType.GRPO, 8),  # x2 -> 42B
        (1 * B, TaskType.IMAGE, 1),
    ],
)
def test_gpu_brackets(params: int, task_type: TaskType, gpus: int) -> None:
    assert gpus_for(params, task_type, RULES) == gpus


def test_brackets_and_factors_come_from_the_rules() -> None:
    rules = ResourceRules(gpu_brackets=((1.0, 1), (2.0, 3)), gpu_max=6, memory_factor_dpo=1.5)
    assert gpus_for(B, TaskType.DPO, rules) == 3
    assert gpus_for(3 * B, TaskType.INSTRUCT, rules) == 6


def test_negative_size_is_an_error() -> None:
    with pytest.raises(ValueError, match="param_count"):
        gpus_for(-1, TaskType.INSTRUCT, RULES)


def test_assign_devices() -> None:
    assert assign_devices([], 4) == ()  # a CPU machine: the run goes on the CPU
    assert assign_devices([3, 1, 2, 0], 2) == (0, 1)
    assert assign_devices([5], 1) == (5,)
    with pytest.raises(ValueError, match="only 2 free"):
        assign_devices([0, 1], 4)
