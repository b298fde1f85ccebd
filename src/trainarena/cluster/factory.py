"""``make_executor``: the executor ``settings.cluster.executor`` names, built in a shell."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from trainarena.execution import Backend, make_backend
from trainarena.pipeline import SandboxedExecutor
from trainarena.runs import CompetitorInfo, RunReport, RunRequest
from trainarena.settings import Settings
from trainarena.tasks.base import TaskDefinition


class Executor(Protocol):
    """What the shells hand on: the orchestrator's ``RunExecutor`` and the workbench's, audits' and
    jobs' executor in one; ``name`` says where and how runs execute."""

    name: str

    def execute(self, request: RunRequest) -> RunReport: ...

    def run_task(self, competitor: CompetitorInfo, task: TaskDefinition, run_dir: Path, run_name: str) -> RunReport: ...

    def evaluate_base_model(self, task: TaskDefinition) -> RunReport: ...

    def close(self) -> None: ...


def make_executor(settings: Settings, unsafe: bool = False, wrap: Callable[[Backend], Backend] | None = None) -> Executor:
    """``local``: the pipeline's executor over ``make_backend(settings, unsafe)`` (``wrap``ped, e.g. behind
    the jobs' device gate). ``ray``: a ``RayExecutor`` whose nodes each build that backend; Ray's
    resource requests keep runs apart on the devices, so ``wrap`` does not apply there."""
    if settings.cluster.executor == "ray":
        from trainarena.cluster.node import SandboxedOnNode
        from trainarena.cluster.ray_executor import RayExecutor

        return RayExecutor(settings, SandboxedOnNode(unsafe), node_backend="local-unsafe" if unsafe else None)
    backend = make_backend(settings, unsafe=unsafe)
    return SandboxedExecutor(settings, backend if wrap is None else wrap(backend))
