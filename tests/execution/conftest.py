"""Fixtures for the execution tests: tiny jobs over the example competitors, in a throwaway data dir."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from execution_helpers import EXAMPLES, MakeJob

from trainarena.contract import RunSpec, TaskType
from trainarena.execution.base import SandboxJob
from trainarena.settings import SandboxRules, Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def rules() -> SandboxRules:
    return SandboxRules()


@pytest.fixture
def make_job(settings: Settings) -> MakeJob:
    """A job running ``examples/competitors/<example>`` (or a directory) under a fresh run directory."""

    def make(
        example: str | Path,
        budget: float = 20.0,
        grace: float = 1.0,
        log_max_bytes: int = 1_000_000,
        memory_limit_mb: int = 2048,
        extra_env: dict[str, str] | None = None,
        entrypoint: str = "train.py",
    ) -> SandboxJob:
        run_id = f"run-{uuid.uuid4().hex[:8]}"
        run_dir = settings.work_dir / run_id
        submission = Path(example) if isinstance(example, Path) else EXAMPLES / example
        inputs = run_dir / "inputs"
        inputs.mkdir(parents=True)
        (inputs / "train.jsonl").write_text('{"instruction": "say hi", "output": "hi"}\n')
        spec = RunSpec(run_id=run_id, task_type=TaskType.INSTRUCT, dataset_file="train.jsonl",
                       budget_seconds=budget, seed=7)
        (inputs / "task.json").write_text(spec.to_json())
        return SandboxJob(
            spec=spec, entrypoint=entrypoint, submission_dir=submission, inputs_dir=inputs,
            output_dir=run_dir / "output", log_dir=run_dir / "logs", grace_seconds=grace,
            memory_limit_mb=memory_limit_mb, log_max_bytes=log_max_bytes, extra_env=extra_env or {},
        )

    return make


@pytest.fixture
def script_dir(tmp_path: Path) -> Callable[[str], Path]:
    """A one-file submission directory holding ``train.py`` with the given source."""

    def make(source: str) -> Path:
        directory = tmp_path / f"sub-{uuid.uuid4().hex[:6]}"
        directory.mkdir()
        (directory / "train.py").write_text(source)
        return directory

    return make
