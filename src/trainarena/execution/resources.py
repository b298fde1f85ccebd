"""How many GPUs a task gets, from its base model's size and type, and which ones (no I/O).

A model's parameter count (in billions) is scaled by the task type's memory factor (DPO keeps a
reference model and two forward passes per pair: x3; GRPO generates and keeps a reference: x2), then
looked up in ``ResourceRules.gpu_brackets``: the first bracket whose limit is >= the scaled size;
beyond the last bracket, ``gpu_max``. :class:`DevicePool` hands the GPUs out to concurrent runs.
"""

from __future__ import annotations

import threading

from trainarena.contract import TaskType
from trainarena.execution.supervise import wait_unless_stopped
from trainarena.settings import ResourceRules


def memory_factor(task_type: TaskType, rules: ResourceRules) -> float:
    if task_type is TaskType.DPO:
        return rules.memory_factor_dpo
    if task_type is TaskType.GRPO:
        return rules.memory_factor_grpo
    return 1.0


def gpus_for(param_count: int, task_type: TaskType, rules: ResourceRules) -> int:
    """GPUs a task on a model of ``param_count`` parameters needs (on a machine that has GPUs)."""
    if param_count < 0:
        raise ValueError(f"param_count must be >= 0, got {param_count}")
    billions = param_count / 1e9 * memory_factor(task_type, rules)
    for limit, gpus in sorted(rules.gpu_brackets):
        if billions <= limit:
            return gpus
    return rules.gpu_max


def assign_devices(available: list[int], n: int) -> tuple[int, ...]:
    """The first ``n`` free devices; () on a machine without GPUs (the run goes on the CPU).

    Raises when GPUs exist but fewer than ``n`` are free: the run must wait rather than start short.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not available:
        return ()
    if n > len(available):
        raise ValueError(f"{n} GPUs needed but only {len(available)} free ({available})")
    return tuple(sorted(available)[:n])


class DevicePool:
    """GPUs shared by runs played at once: a run takes the devices it needs and gives them back.

    ``acquire`` blocks until enough devices are free, so two concurrent runs never share a GPU, or
    until the run's ``stop`` is set (None then: the run is not started). On a machine without GPUs
    every acquisition is the empty tuple (the run goes on the CPU).
    """

    def __init__(self, devices: list[int]) -> None:
        self._free = sorted(devices)
        self._total = len(devices)
        self._changed = threading.Condition()

    @property
    def has_gpus(self) -> bool:
        return self._total > 0

    def acquire(self, n: int, stop: threading.Event | None = None) -> tuple[int, ...] | None:
        if not self._total:
            return ()
        if n > self._total:
            raise ValueError(f"{n} GPUs needed but this machine has only {self._total}")
        with self._changed:
            if not wait_unless_stopped(self._changed, lambda: len(self._free) >= n, stop):
                return None
            taken = assign_devices(self._free, n)
            self._free = [d for d in self._free if d not in taken]
            return taken

    def release(self, devices: tuple[int, ...]) -> None:
        with self._changed:
            self._free = sorted({*self._free, *devices})
            self._changed.notify_all()
