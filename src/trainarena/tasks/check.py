"""Checking a task without running anything (``trainarena task check``): its dataset loads, validates
and splits exactly as a tournament would prepare it, into a temporary folder removed afterwards; then
the written split is read back and no group key may sit on both sides. Every problem raises the
task type's own :class:`DatasetError`."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainarena.settings import Settings
from trainarena.tasks import get_task_type
from trainarena.tasks.base import DroppedRows, TaskDefinition, count_dropped, dropped_to_json
from trainarena.tasks.digests import path_digest
from trainarena.tasks.secret_split import split_settings
from trainarena.tasks.sources import check_dataset_source

SHOWN_SHARED_KEYS = 5  # shared group keys named in a failed check


@dataclass(frozen=True)
class TaskCheck:
    """What preparing a task gave: the split's sizes in rows and groups, the dropped rows, the group
    keys found on both sides (none when the split holds) and the dataset spec scripts would get."""

    task: TaskDefinition
    train_rows: int
    hidden_rows: int
    train_groups: int
    hidden_groups: int
    dropped: tuple[DroppedRows, ...]
    shared_groups: tuple[str, ...]
    script_spec: dict[str, Any]  # /inputs/dataset_spec.json of a run: the field mapping and the scoring rules
    hidden_digest: str = ""  # sha256 of the written hidden split (tasks/digests.py): what a stored task records

    @property
    def leak_free(self) -> bool:
        return not self.shared_groups

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.leak_free,
            "name": self.task.name,
            "type": self.task.task_type.value,
            "base_model": self.task.base_model,
            "source": self.task.dataset.get("source"),
            "rows": self.train_rows + self.hidden_rows + count_dropped(self.dropped),
            "train_rows": self.train_rows,
            "hidden_rows": self.hidden_rows,
            "train_groups": self.train_groups,
            "hidden_groups": self.hidden_groups,
            "dropped_rows": count_dropped(self.dropped),
            "dropped": dropped_to_json(self.dropped),
            "leak_check": {"passed": self.leak_free, "shared_groups": list(self.shared_groups[:SHOWN_SHARED_KEYS])},
        }


def check_task(task: TaskDefinition, settings: Settings, *, customer_upload: bool = False) -> TaskCheck:
    """Prepare ``task`` into a temporary folder and check its split (DatasetError when it cannot be
    prepared). A source in the store's state, or a text folder that save_to_disk did not write, is
    refused before anything reads it (tasks/sources.py); customers' uploads are the store's state but
    for a ``customer_upload`` task (a job's own file)."""
    plugin = get_task_type(task.task_type)
    check_dataset_source(task, settings, customer_upload=customer_upload)
    with tempfile.TemporaryDirectory(prefix="trainarena-task-check-") as scratch:
        prepared = plugin.prepare(task, Path(scratch) / "train", Path(scratch) / "hidden", split_settings(task, settings))
        train_keys, hidden_keys = plugin.group_keys(prepared)
        hidden_digest = path_digest(Path(scratch) / "hidden")
    return TaskCheck(
        task=task,
        train_rows=prepared.train_rows,
        hidden_rows=prepared.hidden_rows,
        train_groups=len(set(train_keys)),
        hidden_groups=len(set(hidden_keys)),
        dropped=prepared.dropped,
        shared_groups=tuple(sorted(set(train_keys) & set(hidden_keys))),
        script_spec=prepared.dataset_spec,
        hidden_digest=hidden_digest,
    )
