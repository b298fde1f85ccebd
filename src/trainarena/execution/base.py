"""The one interface every execution backend implements: ``run(job) -> RunResult`` and ``close()``.

A backend starts a competitor's script with the host directories of a :class:`SandboxJob` bound onto
the contract's sandbox paths (/submission, /inputs, /output), enforces the budget (SIGTERM at the
deadline, SIGKILL after the grace period, the whole process tree), caps the logs, and reports what
happened. It does not look at the artifact: ``execution.artifacts`` validates that afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from trainarena.contract import RunSpec, RunStatus


@dataclass(frozen=True)
class SandboxJob:
    spec: RunSpec
    entrypoint: str  # relative to the submission root, from its trainarena.toml
    submission_dir: Path  # host: the checked-out repository (bound read-only)
    inputs_dir: Path  # host: model/, train split, dataset_spec.json, task.json (bound read-only)
    output_dir: Path  # host: empty directory (bound writable)
    log_dir: Path  # host: stdout.log / stderr.log are written here, outside the sandbox
    grace_seconds: float
    memory_limit_mb: int
    log_max_bytes: int
    extra_env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunResult:
    status: RunStatus  # SUCCEEDED (exit 0 in time), FAILED or TIMED_OUT; INVALID is set by artifact checks
    exit_code: int | None
    started_at: float  # unix seconds
    finished_at: float
    stdout_path: Path
    stderr_path: Path
    failure_reason: str | None = None  # for FAILED/TIMED_OUT: what happened, with the log's tail

    @property
    def wall_seconds(self) -> float:
        return self.finished_at - self.started_at


class Backend(Protocol):
    name: str

    def run(self, job: SandboxJob) -> RunResult: ...

    def close(self) -> None: ...
