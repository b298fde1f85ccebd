"""The one interface every task type implements, registered by name in ``tasks/__init__.py``.

A task type knows how to (1) load, validate and split a dataset into the train split that enters the
sandbox and the hidden test split that never does, (2) write the script's inputs, and (3) evaluate an
artifact on the hidden split in a separate process, returning a score and its direction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from trainarena.contract import Direction, TaskType
from trainarena.settings import Settings


class DatasetError(ValueError):
    """A dataset that cannot be used, with a message that names the problem (file, column, row)."""


class UnknownSpecKeys(DatasetError):
    """A dataset spec holding keys its task type does not read: which ones, and the keys it may hold."""

    def __init__(self, what: str, unknown: list[str], allowed: list[str], noun: str = "key(s)") -> None:
        self.what, self.unknown, self.allowed, self.noun = what, unknown, allowed, noun
        super().__init__(f"{what}: unknown {noun} {unknown}; allowed: {allowed}")

    def without(self, keys: tuple[str, ...]) -> UnknownSpecKeys:
        """The same refusal for a caller who may not give ``keys`` either (a job's field_mapping: the
        platform sets ``source`` and ``split``), so the allowed list offers none of them."""
        return UnknownSpecKeys(self.what, self.unknown, [key for key in self.allowed if key not in keys], self.noun)


@dataclass(frozen=True)
class TaskDefinition:
    """A task as an operator writes it (a TOML/JSON task file) or the tournament draws it."""

    name: str
    task_type: TaskType
    base_model: str  # Hugging Face id or local path
    dataset: dict[str, Any]  # task-type specific dataset spec: source + field mapping + formats
    budget_seconds: float
    seed: int = 0
    # A stored task's key to its secret split seed (tasks/secret_split.py); None: the public
    # DataRules.split_seed of an ad-hoc task file. Never given to the script.
    split_key: str | None = None
    # An image task with a split key scored with the public ImageRules.eval_master_seed instead of its
    # secret noise seed (tasks/secret_split.py), as image runs were before noise seeds were per task: set
    # only by an audit replaying such a record. How a run is scored, not what the task is: never stored
    # with the definition (runs.definition_json) nor given to the script.
    public_noise: bool = False


@dataclass(frozen=True)
class DroppedRows:
    """Rows of a dataset left out for one reason, by their 1-based numbers in the source."""

    reason: str  # e.g. "column 'chosen' is empty"
    rows: tuple[int, ...]


def count_dropped(groups: Iterable[DroppedRows]) -> int:
    return sum(len(group.rows) for group in groups)


def dropped_to_json(groups: Iterable[DroppedRows]) -> list[dict[str, Any]]:
    return [{"reason": group.reason, "rows": list(group.rows)} for group in groups]


def describe_dropped(groups: Iterable[DroppedRows], shown: int = 5) -> str:
    """``"column 'c' is empty (rows 3, 9); column 'p' is null (row 12)"``, the first ``shown`` rows of each reason."""
    parts = []
    for group in groups:
        numbers = ", ".join(str(n) for n in group.rows[:shown]) + (f" and {len(group.rows) - shown} more" if len(group.rows) > shown else "")
        parts.append(f"{group.reason} ({'rows' if len(group.rows) > 1 else 'row'} {numbers})")
    return "; ".join(parts)


@dataclass(frozen=True)
class PreparedTask:
    """Where a task's prepared data lives on the host, and what preparing it left out."""

    train_file: Path  # copied into the run's /inputs
    dataset_spec: dict[str, Any]  # written as /inputs/dataset_spec.json
    hidden_file: Path  # stays in the hidden directory; only the evaluator reads it
    train_rows: int
    hidden_rows: int
    dropped: tuple[DroppedRows, ...] = ()  # rows left out before the split, grouped by reason

    @property
    def dropped_count(self) -> int:
        return count_dropped(self.dropped)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready record (the cache marker, the task's stored ``prepared`` entry)."""
        return {
            **asdict(self),
            "train_file": str(self.train_file),
            "hidden_file": str(self.hidden_file),
            "dropped": dropped_to_json(self.dropped),
            "dropped_rows": self.dropped_count,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PreparedTask:
        known = {f.name for f in fields(cls)}
        return cls(**{
            **{key: value for key, value in data.items() if key in known},
            "train_file": Path(data["train_file"]),
            "hidden_file": Path(data["hidden_file"]),
            "dropped": tuple(DroppedRows(group["reason"], tuple(group["rows"])) for group in data.get("dropped", ())),
        })


@dataclass(frozen=True)
class Evaluation:
    score: float | None  # None: the artifact could not be evaluated (see failure)
    direction: Direction
    failure: str | None = None
    # The scale a boss lead is measured in on this task (engine.paired.relative_lead); None: |score|.
    lead_unit: float | None = None
    # Each hidden example's share of the score, in hidden-file order: the score is exactly
    # engine.scores.score_of(per_example) (details["per_example_form"] == "shares"; older rows differ).
    per_example: tuple[float, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


class TaskPlugin(Protocol):
    task_type: TaskType
    direction: Direction

    def prepare(self, task: TaskDefinition, train_dir: Path, hidden_dir: Path, settings: Settings) -> PreparedTask:
        """Load and validate the dataset (raise DatasetError), split it by group key with the settings'
        seed, write the train split under ``train_dir`` and the hidden split under ``hidden_dir``."""
        ...

    def group_keys(self, prepared: PreparedTask) -> tuple[list[str], list[str]]:
        """The group key of every train and every hidden example, read back from the written split
        (the split never puts one key on both sides; ``trainarena task check`` verifies it)."""
        ...

    def evaluate(self, task: TaskDefinition, prepared: PreparedTask, artifact_dir: Path, settings: Settings) -> Evaluation:
        """Score an artifact on the hidden split. Runs in a child process (never loads artifact code);
        a broken artifact returns an Evaluation with ``score=None`` and a reason, never raises."""
        ...
