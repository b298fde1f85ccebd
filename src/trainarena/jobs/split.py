"""How a job's file is split: the task plugins' own ``prepare``, with the job's validation share.

Every task type prepares a dataset the same way for a job as for a tournament (the same loading,
checks, cleaning, group split and script layout), so a job never trains on data a tournament task
would refuse. Only the split's size differs:

- ``validation_share > 0``: the plugin holds out that share of the rows (by group, with the job's seed,
  no row cap) as its hidden split; the artifact is scored on it and the score reported.
- ``validation_share == 0``: the customer wants every row trained on. The plugins always hold out
  something (a hidden split of at least one group), so the job prepares with the smallest held-out
  share (one group) and then folds the held-out rows back into the train file (:func:`fold_hidden`):
  the script trains on every row, and the score the pipeline still computes on that folded group
  measures training data, so it is never reported.

:class:`JobPreparer` is the pipeline's :class:`~trainarena.task_preparation.TaskPreparer` with the plugin
wrapped this way; the job prepares its task with it before running, and the executor then finds the
preparation in its cache (tasks are cached by their definition, and a job's task is named after the
job, so no two jobs share one).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import replace
from pathlib import Path

from trainarena.settings import DataRules, Settings
from trainarena.task_preparation import TaskPreparer
from trainarena.tasks import get_task_type
from trainarena.tasks.base import Evaluation, PreparedTask, TaskDefinition, TaskPlugin
from trainarena.tasks.image.data import CAPTIONS_FILE, IMAGES_DIR, read_captions_file
from trainarena.tasks.text.rows import SPEC_FILE

# The held-out share asked of a plugin when the job holds nothing out: one group is taken (the
# plugins' floor), then folded back.
_SMALLEST_SHARE = 1e-9
_NO_ROW_CAP = 10**9


def job_data_rules(rules: DataRules, validation_share: float, seed: int) -> DataRules:
    """The data rules a job's file is prepared with: its share held out (one group when 0), no row
    cap, split by the job's seed."""
    share = validation_share if validation_share > 0 else _SMALLEST_SHARE
    return rules.model_copy(update={"test_fraction": share, "test_max_rows": _NO_ROW_CAP, "test_min_rows": 1,
                                    "split_seed": seed})  # fmt: skip


class JobSplitPlugin:
    """A task plugin whose ``prepare`` splits by the job's share (module docstring)."""

    def __init__(self, inner: TaskPlugin, validation_share: float, seed: int) -> None:
        self._inner = inner
        self._share = validation_share
        self._seed = seed
        self.task_type = inner.task_type
        self.direction = inner.direction

    def prepare(self, task: TaskDefinition, train_dir: Path, hidden_dir: Path, settings: Settings) -> PreparedTask:
        rules = job_data_rules(settings.data, self._share, self._seed)
        prepared = self._inner.prepare(task, train_dir, hidden_dir, settings.model_copy(update={"data": rules}))
        return prepared if self._share > 0 else fold_hidden(prepared)

    def group_keys(self, prepared: PreparedTask) -> tuple[list[str], list[str]]:
        return self._inner.group_keys(prepared)

    def evaluate(self, task: TaskDefinition, prepared: PreparedTask, artifact_dir: Path, settings: Settings) -> Evaluation:
        return self._inner.evaluate(task, prepared, artifact_dir, settings)


class JobPreparer(TaskPreparer):
    """The pipeline's preparer (staged, cached by definition) with the job's split plugin."""

    def __init__(self, settings: Settings, validation_share: float, seed: int) -> None:
        super().__init__(settings)
        self._share = validation_share
        self._seed = seed

    def plugin(self, task: TaskDefinition) -> TaskPlugin:
        return JobSplitPlugin(get_task_type(task.task_type), self._share, self._seed)


def fold_hidden(prepared: PreparedTask) -> PreparedTask:
    """``prepared`` with its hidden rows appended to its train file (the hidden file stays, for the
    pipeline's unreported evaluation)."""
    if prepared.train_file.suffix == ".zip":
        images = _fold_images(prepared.train_file, prepared.hidden_file)
        spec = {**prepared.dataset_spec, "images": images}
        (prepared.train_file.parent / SPEC_FILE).write_text(json.dumps(spec, indent=2, sort_keys=True))
        return replace(prepared, dataset_spec=spec, train_rows=images)
    hidden = prepared.hidden_file.read_text(encoding="utf-8")
    with prepared.train_file.open("a", encoding="utf-8") as train:
        train.write(hidden)
    return replace(prepared, train_rows=prepared.train_rows + prepared.hidden_rows)


def _fold_images(train_zip: Path, hidden_captions: Path) -> int:
    """Rewrite the train zip with the hidden images added after its own (the layout of
    ``tasks.image.data.write_train_zip``); returns the image count."""
    with zipfile.ZipFile(train_zip) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    lines = members.pop(CAPTIONS_FILE).decode("utf-8").splitlines(keepends=True)
    index = len(lines)
    for image_path, caption in read_captions_file(hidden_captions):
        name = f"{IMAGES_DIR}/{index:04d}.png"
        members[name] = image_path.read_bytes()
        lines.append(json.dumps({"file": name, "caption": caption}) + "\n")
        index += 1
    members[CAPTIONS_FILE] = "".join(lines).encode("utf-8")
    stamp = (2025, 1, 1, 0, 0, 0)
    with zipfile.ZipFile(train_zip, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=stamp), data)
    return index
