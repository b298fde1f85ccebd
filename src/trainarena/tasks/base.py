"""The one interface every task type implements, registered by name in ``tasks/__init__.py``.

A task type knows how to (1) load, validate and split a dataset into the train split that enters the
sandbox and the hidden test split that never does, (2) write the script's inputs, and (3) evaluate an
artifact on the hidden split in a separate process, returning a score and its direction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from trainarena.contract import Direction, TaskType
from trainarena.settings import Settings


class DatasetError(ValueError):
    """A dataset that cannot be used, with a message that names the problem (file, column, row)."""


@dataclass(frozen=True)
class TaskDefinition:
    """A task as an operator writes it (a TOML/JSON task file) or the tournament draws it."""

    name: str
    task_type: TaskType
    base_model: str  # Hugging Face id or local path
    dataset: dict[str, Any]  # task-type specific dataset spec: source + field mapping + formats
    budget_seconds: float
    seed: int = 0


@dataclass(frozen=True)
class PreparedTask:
    """Where a task's prepared data lives on the host."""

    train_file: Path  # copied into the run's /inputs
    dataset_spec: dict[str, Any]  # written as /inputs/dataset_spec.json
    hidden_file: Path  # stays in the hidden directory; only the evaluator reads it
    train_rows: int
    hidden_rows: int


@dataclass(frozen=True)
class Evaluation:
    score: float | None  # None: the artifact could not be evaluated (see failure)
    direction: Direction
    failure: str | None = None
    per_example: tuple[float, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


class TaskPlugin(Protocol):
    task_type: TaskType
    direction: Direction

    def prepare(self, task: TaskDefinition, train_dir: Path, hidden_dir: Path, settings: Settings) -> PreparedTask:
        """Load and validate the dataset (raise DatasetError), split it with the settings' seed, write the
        train split under ``train_dir`` and the hidden split under ``hidden_dir``."""
        ...

    def evaluate(self, task: TaskDefinition, prepared: PreparedTask, artifact_dir: Path, settings: Settings) -> Evaluation:
        """Score an artifact on the hidden split. Runs in a child process (never loads artifact code);
        a broken artifact returns an Evaluation with ``score=None`` and a reason, never raises."""
        ...
