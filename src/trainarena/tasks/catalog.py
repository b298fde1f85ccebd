"""Task files to try (``trainarena task list`` and ``task show``): the ready ones in ``examples/tasks``
of the source tree, or any folder of task files, named by file stem or by path.

A listing reads the files as written (nothing is resolved or built); a description prepares the task
exactly as ``trainarena task check`` does (:func:`~trainarena.tasks.check.check_task`) to count its
rows and split sizes, and adds what the score is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainarena.settings import Settings
from trainarena.tasks import TaskFile, TaskFileError, get_task_type, read_task_file, resolve_task_file
from trainarena.tasks.base import count_dropped
from trainarena.tasks.check import TaskCheck, check_task

TASK_FILE_SUFFIXES = (".toml", ".json")
# The keys of a dataset spec's "scoring" entry that say what the score is, most telling first.
_SCORE_MEANING_KEYS = ("score", "loss", "method")


def examples_folder() -> Path:
    """``examples/tasks`` of the source tree (the examples ship with a checkout, as the README says)."""
    return Path(__file__).resolve().parents[3] / "examples" / "tasks"


def task_files(folder: Path) -> list[Path]:
    """The task files directly in ``folder``, by name (TaskFileError when it is not a folder)."""
    if not folder.is_dir():
        raise TaskFileError(f"{folder}: no such folder of task files")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in TASK_FILE_SUFFIXES)


def find_task_file(name: str, folder: Path) -> Path:
    """``name`` as a task file: the stem of a file in ``folder`` (``instruct-arithmetic``), else a path
    to any task file. TaskFileError naming the known stems when it is neither."""
    by_stem = {path.stem: path for path in task_files(folder)} if folder.is_dir() else {}
    if name in by_stem:
        return by_stem[name]
    path = Path(name).expanduser()
    if path.is_file():
        return path
    known = ", ".join(by_stem) or "none"
    raise TaskFileError(f"no task file {name!r}: not a file, nor a task in {folder} (there: {known})")


@dataclass(frozen=True)
class TaskListing:
    """One line of ``trainarena task list``: a task file as written, or why it cannot be read."""

    file: Path
    task: TaskFile | None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        task = self.task
        return {
            "name": self.file.stem if task is None else task.name,  # the name runs and boards use
            "file": str(self.file),
            "type": None if task is None else task.task_type.value,
            "base_model": None if task is None else task.base_model,
            "dataset": None if task is None else task.dataset.get("source"),
            "budget_seconds": None if task is None else task.budget_seconds,
            "seed": None if task is None else task.seed,
            "error": self.error,
        }


def list_tasks(folder: Path) -> list[TaskListing]:
    """Every task file in ``folder``, read as written (no asset is built, no dataset is read)."""
    listings = []
    for path in task_files(folder):
        try:
            listings.append(TaskListing(path, read_task_file(path)))
        except TaskFileError as error:
            listings.append(TaskListing(path, None, str(error)))
    return listings


@dataclass(frozen=True)
class TaskDescription:
    """``trainarena task show``: the task file as written, and what preparing it gave."""

    task_file: TaskFile
    check: TaskCheck

    @property
    def direction(self) -> str:
        return get_task_type(self.task_file.task_type).direction.value

    @property
    def metric(self) -> str | None:
        """The metric's name (``eval_loss``), where the task type names one (image tasks do not)."""
        return self.check.script_spec.get("scoring", {}).get("metric")

    @property
    def score_meaning(self) -> str:
        """What the score is, in the words of the scoring rules a script gets."""
        scoring = self.check.script_spec.get("scoring", {})
        return next((str(scoring[key]) for key in _SCORE_MEANING_KEYS if scoring.get(key)), self.metric or "-")

    @property
    def fields(self) -> dict[str, Any]:
        """The dataset table as written, less its source; reward functions by name and weight."""
        fields = {key: value for key, value in self.task_file.dataset.items() if key != "source"}
        if "reward_functions" in fields:
            written = self.check.script_spec.get("reward_functions", [])
            fields["reward_functions"] = [{"name": f["name"], "weight": f["weight"]} for f in written]
        return fields

    def to_json(self) -> dict[str, Any]:
        task, check, resolved = self.task_file, self.check, self.check.task
        return {
            "name": task.name,
            "file": str(task.path),
            "type": task.task_type.value,
            "base_model": task.base_model,
            "base_model_path": resolved.base_model,
            "dataset": task.dataset.get("source"),
            "dataset_path": resolved.dataset.get("source"),
            "rows": check.train_rows + check.hidden_rows + count_dropped(check.dropped),
            "train_rows": check.train_rows,
            "hidden_rows": check.hidden_rows,
            "dropped_rows": count_dropped(check.dropped),
            "budget_seconds": task.budget_seconds,
            "seed": task.seed,
            "score": {"metric": self.metric, "direction": self.direction, "meaning": self.score_meaning},
            "fields": self.fields,
        }


def describe_task(path: Path, settings: Settings) -> TaskDescription:
    """Read, resolve and prepare the task file at ``path`` (TaskFileError or DatasetError on a problem)."""
    task_file = read_task_file(path)
    return TaskDescription(task_file, check_task(resolve_task_file(task_file, settings), settings))
