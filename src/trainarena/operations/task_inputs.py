"""Whether a stored task's local files are still those it was stored with: its dataset (and its base
model, when the operator gave a folder of their own) against the sha256 ``task add`` recorded.

A tournament commits to each drawn task's hidden split when it starts (docs/records.md), and every run
prepares the task from the file as it is then, so a dataset edited after ``task add`` would be played
on data the commitment does not name: a champion crowned on it, and only ``verify`` failing later.
``tournament create`` leaves such a task out of the draw; a drive refuses a drawn one before it plays
(``operations.tournaments.check_drawn_tasks`` and its task source), naming the task and the fix.

Hashing is the cost (a dataset is read whole): ``records.provenance.folder_digest`` keeps each path's
digest while its files' sizes and modification times stay what they were (the cache the run records
use), so a drive hashes each input once, and again only when a file was touched meanwhile. A hub
dataset is not read again (as at ``create``), nor a built-in asset (under ``settings.assets_dir``,
built again when the cache is cleared).
"""

from __future__ import annotations

from pathlib import Path

from trainarena.records.provenance import folder_digest
from trainarena.store import StoredTask


def changed_input(task: StoredTask, *, assets_dir: Path | None = None) -> str | None:
    """What of the stored task's local inputs changed since it was stored ("its dataset PATH changed
    ..."), or None. A path that is gone is not said here (``tournaments.task_problem`` says it)."""
    definition = task.definition
    source = Path(str(definition["dataset"].get("source")))
    if source.is_absolute() and source.exists() and folder_digest(source) != task.dataset_digest:
        return f"its dataset {source} changed since it was stored (sha256 differs)"
    model = Path(str(definition["base_model"]))
    builtin = assets_dir is not None and model.is_relative_to(assets_dir)
    if model.is_absolute() and model.is_dir() and not builtin and folder_digest(model) != task.base_model_digest:
        return f"its base model {model} changed since it was stored (sha256 differs)"
    return None
