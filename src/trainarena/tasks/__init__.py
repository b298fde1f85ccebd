"""Task types, one folder each (``tasks/<type>/``), registered by name and imported only when asked for.

Adding a task type: create ``tasks/<type>/__init__.py`` with a ``plugin()`` function returning a
:class:`~trainarena.tasks.base.TaskPlugin` (and ``evaluation.py`` with ``run_evaluation(request)`` if it
uses the child-process evaluator), then add one line to ``_PLUGINS``.
"""

from __future__ import annotations

import importlib
import json
import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainarena.contract import SEED_MAX, TaskType
from trainarena.settings import DataRules, Settings
from trainarena.tasks import builtin_assets
from trainarena.tasks.base import DatasetError, Evaluation, PreparedTask, TaskDefinition, TaskPlugin
from trainarena.tasks.text.hub_rows import HubDatasetError
from trainarena.tasks.text.rows import FILE_SUFFIXES, decode_text

__all__ = [
    "DatasetError",
    "Evaluation",
    "PreparedTask",
    "TaskDefinition",
    "TaskPlugin",
    "TaskFile",
    "TaskFileError",
    "budget_problem",
    "get_task_type",
    "load_task_file",
    "read_task_file",
    "task_file_from_data",
    "resolve_task_file",
    "registered_task_types",
    "with_local_path",
]

# Task type -> module holding its plugin() (and evaluation.run_evaluation). One line per type.
_PLUGINS: dict[TaskType, str] = {
    TaskType.INSTRUCT: "trainarena.tasks.instruct",
    TaskType.IMAGE: "trainarena.tasks.image",
    TaskType.CHAT: "trainarena.tasks.chat",
    TaskType.DPO: "trainarena.tasks.dpo",
    TaskType.GRPO: "trainarena.tasks.grpo",
}


class TaskFileError(ValueError):
    """A task file that cannot be read, naming the file and the field."""


def registered_task_types() -> tuple[TaskType, ...]:
    return tuple(_PLUGINS)


def plugin_module(task_type: TaskType | str) -> str:
    """The module path of a registered task type (raises ``KeyError`` naming the registered ones)."""
    try:
        return _PLUGINS[TaskType(task_type)]
    except (KeyError, ValueError):
        known = ", ".join(t.value for t in _PLUGINS)
        raise KeyError(f"task type '{task_type}' is not available; registered: {known}") from None


def get_task_type(task_type: TaskType | str) -> TaskPlugin:
    """The plugin of a task type, importing its folder on first use."""
    return importlib.import_module(plugin_module(task_type)).plugin()


def score_direction(task_type: TaskType | str) -> str | None:
    """Which way a task type's score is better (lower or higher); None for a type not registered here."""
    try:
        return get_task_type(task_type).direction.value
    except KeyError:
        return None


REQUIRED_KEYS = ("name", "type", "base_model", "budget_seconds", "dataset")
OPTIONAL_KEYS = ("seed",)
DEFAULT_SEED = 0


@dataclass(frozen=True)
class TaskFile:
    """A task file as written: its keys checked, ``base_model`` and ``dataset.source`` not yet resolved
    (what ``trainarena task list`` shows; :func:`resolve_task_file` makes the definition that runs)."""

    path: Path  # absolute
    name: str
    task_type: TaskType
    base_model: str
    dataset: dict[str, Any]
    budget_seconds: float
    seed: int
    # False for a task given whole (`task add` flags, an API body): ``path`` then only places its relative
    # names, and messages name no file, where they named a made-up one ("/srv/task add flags: ...").
    written: bool = True

    @property
    def where(self) -> str:
        """What a message about this task starts with: the file's path, or nothing."""
        return _where(self.path, self.written)


def _where(path: Path, written: bool) -> str:
    return f"{path}: " if written else ""


def load_task_file(path: Path, settings: Settings | None = None) -> TaskDefinition:
    """Read a TOML (``.toml``) or JSON task file::

        name = "arith-1"
        type = "instruct"
        base_model = "models/tiny_llama"   # relative to the task file's folder (or a hub id, see below)
        budget_seconds = 60
        seed = 1
        [dataset]
        source = "arithmetic.jsonl"        # relative to the task file's folder
        field_instruction = "instruction"
        field_output = "output"

    ``base_model`` and ``dataset.source`` come back absolute (see :func:`_local_or_hub`), so nothing
    downstream depends on the working directory; a ``trainarena:NAME`` value names a built-in offline
    asset (``tasks/builtin_assets.py``), found or built under ``settings.assets_dir`` (the settings of
    this process when none are given).
    """
    return resolve_task_file(read_task_file(path, settings), settings)


def read_task_file(path: Path, settings: Settings | None = None) -> TaskFile:
    """The task file at ``path``, checked key by key (TaskFileError naming the file and the key)."""
    path = Path(path).expanduser().absolute()  # a symlinked task file reads paths beside the link
    return task_file_from_data(path, _parse(path), rules=None if settings is None else settings.data)


def task_file_from_data(path: Path, data: dict[str, Any], *, written: bool = True,
                        rules: DataRules | None = None) -> TaskFile:
    """A task file's content (``data``, parsed from the file ``path``, or given whole with ``written``
    False, e.g. in an API request body; relative paths in it are read against ``path``'s folder), checked
    key by key (the budget against ``rules``' bounds: :func:`budget_problem`)."""
    where = _where(path, written)
    unknown = sorted(set(data) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if unknown or missing:
        raise TaskFileError(f"{where}missing {missing}, unknown {unknown}; keys: {list(REQUIRED_KEYS + OPTIONAL_KEYS)}")
    try:
        task_type = TaskType(data["type"])
    except ValueError:
        raise TaskFileError(f"{where}type '{data['type']}' is not one of {[t.value for t in TaskType]}") from None
    budget, seed = data["budget_seconds"], data.get("seed", DEFAULT_SEED)
    if (problem := budget_problem(budget, rules)) is not None:
        raise TaskFileError(f"{where}{problem}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TaskFileError(f"{where}seed must be an integer, got {seed!r}")
    if not 0 <= seed <= SEED_MAX:
        raise TaskFileError(f"{where}seed must be from 0 to {SEED_MAX}, got {seed}")
    if not isinstance(data["dataset"], dict):
        raise TaskFileError(f"{where}dataset must be a table/object")
    for key in ("name", "base_model"):
        if not isinstance(data[key], str) or not data[key]:
            raise TaskFileError(f"{where}{key} must be a non-empty string, got {data[key]!r}")
    return TaskFile(path, data["name"], task_type, data["base_model"], dict(data["dataset"]), float(budget), seed, written)


def budget_problem(budget: Any, rules: DataRules | None = None) -> str | None:
    """Why ``budget`` is no budget_seconds a run can keep to, or None: not a number, not finite (inf and
    nan pass `> 0` checks one way or the other, and would give a run no deadline), or outside the
    settings' bounds (``data.budget_seconds_min``/``_max``; those of this process when none are given)."""
    if isinstance(budget, bool) or not isinstance(budget, int | float) or not math.isfinite(budget) or budget <= 0:
        return f"budget_seconds must be a positive number, got {budget!r}"
    rules = rules or Settings().data
    if not rules.budget_seconds_min <= budget <= rules.budget_seconds_max:
        return (f"budget_seconds must be from {rules.budget_seconds_min:g} to {rules.budget_seconds_max:g} seconds "
                f"(settings data.budget_seconds_min and data.budget_seconds_max), got {budget:g}")
    return None


def resolve_task_file(task_file: TaskFile, settings: Settings | None = None) -> TaskDefinition:
    """The definition a run uses: ``base_model`` and ``dataset.source`` as absolute paths (or hub ids).
    Built-in asset names are all checked before any asset is built."""
    task_type = task_file.task_type
    kind = builtin_assets.IMAGE if task_type is TaskType.IMAGE else builtin_assets.TEXT
    dataset = dict(task_file.dataset)
    source = dataset.get("source")
    named = {"base_model": (task_file.base_model, builtin_assets.MODEL)}
    if isinstance(source, str):
        named["dataset.source"] = (source, builtin_assets.DATASET)
    assets = {}
    for key, (value, role) in named.items():
        if builtin_assets.is_builtin(value):
            try:
                assets[key] = builtin_assets.find_builtin(value, role=role, kind=kind)
            except builtin_assets.BuiltinAssetError as error:
                raise TaskFileError(f"{task_file.where}{key}: {error}") from None

    def place(key: str, *, hub: bool) -> str:
        if key in assets:
            return str(builtin_assets.builtin_path(assets[key], (settings or Settings()).assets_dir))
        return _local_or_hub(task_file, key, named[key][0], hub=hub)

    if "dataset.source" in named:
        # Image datasets are local folders or zips only; text datasets may be hub ids.
        dataset["source"] = place("dataset.source", hub=kind == builtin_assets.TEXT)
    return TaskDefinition(
        name=task_file.name,
        task_type=task_type,
        base_model=place("base_model", hub=True),
        dataset=dataset,
        budget_seconds=task_file.budget_seconds,
        seed=task_file.seed,
    )


def with_local_path(error: Exception, task_file: Path) -> Exception:
    """``error``, where it is a dataset name read as a hub id that loads nothing, naming the local path
    that name was looked for at first: relative names are read against ``task_file``'s folder (the
    stand-in's for `task add` flags or an API body)."""
    return error.looked_in(task_file.parent) if isinstance(error, HubDatasetError) else error


def _parse(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise TaskFileError(f"{path}: cannot read the task file ({error.strerror})") from None
    try:  # as a dataset file is read: a byte-order mark dropped, a byte that is not UTF-8 named
        text = decode_text(str(path), data)
    except DatasetError as error:
        raise TaskFileError(str(error)) from None
    try:
        if path.suffix.lower() == ".toml":
            return tomllib.loads(text)
        if path.suffix.lower() == ".json":
            data = json.loads(text)
            if isinstance(data, dict):
                return data
            raise TaskFileError(f"{path}: a JSON task file must hold one object")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise TaskFileError(f"{path}: not valid {path.suffix[1:].upper()} ({error})") from None
    raise TaskFileError(f"{path}: task files are .toml or .json, not '{path.suffix}'")


# A Hugging Face id: "name" or "namespace/name" (letters, digits, "-", "_", "."; no leading dot).
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")
_LOCAL_SUFFIXES = (*FILE_SUFFIXES, ".zip")  # dataset files, or a zip of captioned images


def _local_or_hub(task_file: TaskFile, key: str, value: str, *, hub: bool) -> str:
    """A local path as an absolute path, relative ones read against the task file's folder; a hub id
    (where ``hub`` allows one) kept as written. A relative value is a hub id only when nothing of that
    name is beside the task file, it has the shape of one and no dataset file suffix: ``org/name``
    stays an id, ``data/rows.jsonl`` or ``./model`` is a path even when missing (preparation then
    names the absolute path it looked for), never a path in the working directory."""
    if not value:
        raise TaskFileError(f"{task_file.where}{key} must not be empty")
    given = Path(value).expanduser()
    local = task_file.path.parent / given  # an absolute `given` stays itself
    looks_like_hub_id = _HUB_ID.fullmatch(value) is not None and given.suffix.lower() not in _LOCAL_SUFFIXES
    if hub and looks_like_hub_id and not local.exists():
        return value
    return str(local.resolve())
