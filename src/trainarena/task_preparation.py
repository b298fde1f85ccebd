"""Prepared task data, once per task: the train split under ``cache_dir/tasks/<digest>/``, the hidden
split under ``hidden_dir/<digest>/`` (which no sandbox sees), keyed by the task definition's digest and
written through staging folders renamed into place, so a killed preparation leaves nothing read."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
from dataclasses import replace
from pathlib import Path

from trainarena.runs import definition_digest
from trainarena.settings import Settings
from trainarena.tasks import get_task_type
from trainarena.tasks.base import PreparedTask, TaskDefinition, TaskPlugin
from trainarena.tasks.secret_split import split_settings

_PREPARED_MARKER = "prepared.json"


def task_folders(settings: Settings, digest: str) -> list[Path]:
    """Where ``TaskPreparer`` puts the task whose definition digest is ``digest``: its train folder
    (under the cache dir, with the marker) and its hidden folder, in that order. A preparation stages
    each in a ``staging_prefix(folder)*`` folder beside it (``staged_leftovers``)."""
    return [settings.cache_dir / "tasks" / digest, settings.hidden_dir / digest]


def staging_prefix(folder: Path) -> str:
    """The name prefix of the staging folders a preparation of ``folder`` makes beside it."""
    return f".staging-{folder.name}-"


def staged_leftovers(folder: Path) -> list[Path]:
    """The staging folders beside ``folder`` (a preparation running, or one killed midway)."""
    return sorted(folder.parent.glob(f"{staging_prefix(folder)}*")) if folder.parent.is_dir() else []


class TaskPreparer:
    """Prepares each distinct task once (thread-safe), reusing earlier preparations from disk.

    A preparation is written into staging folders beside its final ones and renamed into place only
    when complete (the train folder, holding the marker, last): a failed preparation leaves nothing
    under the cache or hidden dirs (not even the folders it created), a folder without its marker is
    never used, and a process killed midway leaves only a ``.staging-*`` folder, which nothing reads."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def prepare(self, task: TaskDefinition) -> PreparedTask:
        digest = definition_digest(task)  # prepared data is cached by the definition's content address
        with self._guard:
            lock = self._locks.setdefault(digest, threading.Lock())
        with lock:
            train_dir, hidden_dir = task_folders(self._settings, digest)
            marker = train_dir / _PREPARED_MARKER
            if marker.exists():
                return PreparedTask.from_json(json.loads(marker.read_text()))
            return self._prepare_staged(task, train_dir, hidden_dir)

    def plugin(self, task: TaskDefinition) -> TaskPlugin:
        """The plugin that prepares ``task``: its type's (a job's preparer splits differently, ``jobs.split``)."""
        return get_task_type(task.task_type)

    def _prepare_staged(self, task: TaskDefinition, train_dir: Path, hidden_dir: Path) -> PreparedTask:
        created = [p for d in (train_dir, hidden_dir) for p in _missing_ancestors(d.parent)]
        stages: list[Path] = []
        try:
            for final in (train_dir, hidden_dir):
                final.parent.mkdir(parents=True, exist_ok=True)
                stages.append(Path(tempfile.mkdtemp(prefix=staging_prefix(final), dir=final.parent)))
            train_stage, hidden_stage = stages
            staged = self.plugin(task).prepare(task, train_stage, hidden_stage, split_settings(task, self._settings))
            prepared = replace(
                staged,
                train_file=train_dir / staged.train_file.relative_to(train_stage),
                hidden_file=hidden_dir / staged.hidden_file.relative_to(hidden_stage),
            )
            (train_stage / _PREPARED_MARKER).write_text(json.dumps(prepared.to_json()))
            if (train_dir / _PREPARED_MARKER).exists():  # another process finished the same task meanwhile
                return PreparedTask.from_json(json.loads((train_dir / _PREPARED_MARKER).read_text()))
            for final, stage in ((hidden_dir, hidden_stage), (train_dir, train_stage)):
                shutil.rmtree(final, ignore_errors=True)  # a leftover without its marker: never used
                os.rename(stage, final)
            return prepared
        except BaseException:
            leftovers = stages if (train_dir / _PREPARED_MARKER).exists() else [*stages, hidden_dir, train_dir]
            for directory in leftovers:
                shutil.rmtree(directory, ignore_errors=True)
            for directory in sorted(set(created), key=lambda p: len(p.parts), reverse=True):
                with contextlib.suppress(OSError):  # only when empty: another preparation may be using it
                    directory.rmdir()
            raise
        finally:
            for stage in stages:
                shutil.rmtree(stage, ignore_errors=True)


def _missing_ancestors(directory: Path) -> list[Path]:
    """``directory`` and its parents that do not exist yet, deepest first."""
    missing = []
    while not directory.exists() and directory != directory.parent:
        missing.append(directory)
        directory = directory.parent
    return missing
