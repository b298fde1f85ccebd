"""Which local dataset sources a task may name, judged from the path alone before anything reads it.

A source inside the data directory's own state is refused: the database (and its -wal, -shm and
-journal files), the key files, the hidden splits, the run folders, the model registry and the cache
(built-in assets excepted), customers' uploads (their private data, which a tournament would publish
and reveal; only the customer's own job reads its upload), and any folder that holds the data directory.
Reading them is not only
pointless: closing any descriptor of an SQLite file drops the process's POSIX locks on it, so the next
command on the store took the live server for gone and deleted its -wal and -shm files. A text
dataset folder must be one ``datasets``' ``save_to_disk`` wrote, told by its marker files, so an
operator's typo never hashes a folder of models and runs inside a request."""

from __future__ import annotations

from pathlib import Path

from trainarena.contract import TaskType
from trainarena.settings import Settings
from trainarena.tasks.base import DatasetError, TaskDefinition

# What datasets' save_to_disk writes: a Dataset folder, or a DatasetDict folder of such folders.
SAVED_DATASET_FILES = ("dataset_info.json", "state.json")
SAVED_DATASET_DICT_FILE = "dataset_dict.json"


def check_dataset_source(task: TaskDefinition, settings: Settings, *, customer_upload: bool = False) -> None:
    """DatasetError when ``task``'s local source is part of the store's state, or a text dataset's
    folder is not a save_to_disk folder. A missing source, or one that is no local path (a hub id), is
    left to the dataset spec and the loader. ``customer_upload``: the task is a customer job's, whose
    source is its own upload."""
    source = task.dataset.get("source")
    if not isinstance(source, str) or not source:
        return
    path = Path(source)
    if not path.exists():
        return
    resolved = path.resolve()
    problem = state_problem(resolved, settings, customer_upload=customer_upload)
    if problem:
        raise DatasetError(f"{source}: {problem}; give a dataset file or folder of its own")
    if task.task_type is not TaskType.IMAGE and resolved.is_dir() and not is_saved_dataset(resolved):
        raise DatasetError(f"{source}: a folder, but not one written by datasets' save_to_disk (it has neither "
                           f"{SAVED_DATASET_DICT_FILE} nor {' and '.join(SAVED_DATASET_FILES)}); give a JSONL, JSON, "
                           "CSV or Parquet file, or a save_to_disk folder")  # fmt: skip


def is_saved_dataset(folder: Path) -> bool:
    """Whether ``folder`` holds save_to_disk's marker files (nothing else in it is opened)."""
    return (folder / SAVED_DATASET_DICT_FILE).is_file() or all((folder / name).is_file() for name in SAVED_DATASET_FILES)


def state_problem(resolved: Path, settings: Settings, *, customer_upload: bool = False) -> str | None:
    """Why the resolved path is the store's state, or None (uploads are allowed for ``customer_upload``)."""
    data_dir = settings.data_dir.resolve()
    if resolved == data_dir:
        return "this is the data directory (its database, keys, runs and models)"
    if data_dir.is_relative_to(resolved):
        return f"this folder holds the data directory {data_dir} (its database, keys, runs and models)"
    if resolved.is_relative_to(settings.assets_dir.resolve()):
        return None  # built-in datasets live in the cache
    for state, what in _state_paths(settings, with_uploads=not customer_upload):
        if resolved == state or resolved.is_relative_to(state):
            return f"inside the data directory's {what} ({state}), which a task may not read"
    return None


def _state_paths(settings: Settings, *, with_uploads: bool) -> list[tuple[Path, str]]:
    paths = [(settings.hidden_dir, "hidden splits"), (settings.work_dir, "run folders"), (settings.cache_dir, "cache"),
             (settings.registry_dir, "model registry"), *settings.secret_files]  # fmt: skip
    if with_uploads:
        paths.append((settings.uploads_dir, "customers' uploads"))
    return [(path.resolve(), what) for path, what in paths]
