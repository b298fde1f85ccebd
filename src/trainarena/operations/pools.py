"""Adding stored tasks to pools (``trainarena task add``): a task from a task file or from command-line
flags is resolved, its base model checked to load, its dataset validated and split exactly as
``trainarena task check`` does, with its secret split seed (tasks/secret_split.py), and stored with the
digests of its base model, dataset and hidden split. Nothing is stored when a check fails."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy.orm import Session

from trainarena.contract import TaskType, stored_name_problem
from trainarena.pipeline import parameter_count, resolve_base_model
from trainarena.runs import definition_from_json, definition_json, task_key
from trainarena.settings import DataRules, Settings
from trainarena.store import (
    StoredTask,
    add_stored_task,
    get_pool,
    get_stored_task,
    stored_tasks_with_dataset,
    tournaments_drawing,
)
from trainarena.store.competitors import StoreError
from trainarena.tasks import (
    TaskFile,
    TaskFileError,
    budget_problem,
    resolve_task_file,
    score_direction,
    task_file_from_data,
    with_local_path,
)
from trainarena.tasks.base import DatasetError, TaskDefinition
from trainarena.tasks.check import SHOWN_SHARED_KEYS, TaskCheck, check_task
from trainarena.tasks.digests import path_digest
from trainarena.tasks.spec_checks import STRUCTURED_KEYS
from trainarena.tasks.text.rows import load_rows

# Files that say a folder is a loadable model: a transformers model or a diffusers pipeline.
MODEL_CONFIG_FILES = ("config.json", "model_index.json")
# Where a task given as flags is as if written: relative names are read in the working directory.
FLAGS_SOURCE = "task add flags"


class TaskRefused(ValueError):
    """A task ``task add`` will not store, with the reason (the model, the dataset, the name)."""


class StoredTaskUnusable(StoreError):
    """A stored task that cannot run as stored, naming it and the fix."""


def task_kind(task_type: TaskType) -> str:
    return "image" if task_type is TaskType.IMAGE else "text"


def task_from_flags(name: str, task_type: str, base_model: str, dataset: dict[str, Any], budget_seconds: float,
                    seed: int | None = None, *, rules: DataRules | None = None) -> TaskFile:
    """A task given as flags, as if written in a task file in the working directory (relative paths
    are read against it)."""
    try:
        kind = TaskType(task_type)
    except ValueError:
        raise TaskFileError(f"--type {task_type!r} is not one of {[t.value for t in TaskType]}") from None
    if "source" not in dataset:
        raise TaskFileError("--dataset is required: a local file or folder, or a Hugging Face dataset id")
    dataset = {key: _json_flag(key, value) if key in STRUCTURED_KEYS else value for key, value in dataset.items()}
    # The task file's checks, so a flag cannot give what a file may not (e.g. an infinite budget).
    data = {"name": name, "type": kind.value, "base_model": base_model, "dataset": dataset, "budget_seconds": budget_seconds,
            **({} if seed is None else {"seed": seed})}  # fmt: skip
    return task_file_from_data(Path.cwd() / FLAGS_SOURCE, data, written=False, rules=rules)


def _json_flag(key: str, value: Any) -> Any:
    """A table or list key given as a flag, in JSON: ``--role-map '{"human": "user"}'``."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as error:
        raise TaskFileError(f"--{key.replace('_', '-')} takes JSON, as in a JSON task file (e.g. --role-map "
                            f"'{{\"human\": \"user\"}}'), got {value!r} ({error.msg}); or write a task file "
                            "and use `task add --file`") from None


def model_digest(base_model: str) -> str:
    """sha256 of the base model's files, after checking it is a model that loads: a folder with a
    config and safetensors weights whose headers read (DatasetError naming what is wrong)."""
    if Path(base_model).is_absolute() and not Path(base_model).exists():  # a path, never a hub id
        raise DatasetError(f"base model {base_model!r}: no such folder; give a folder written by save_pretrained")
    folder = resolve_base_model(base_model)
    if not any((folder / name).is_file() for name in MODEL_CONFIG_FILES):
        raise DatasetError(f"base model {base_model!r}: {folder} has none of {list(MODEL_CONFIG_FILES)}; "
                           "give a folder written by save_pretrained")
    try:
        parameters = parameter_count(folder)
    except (OSError, ValueError, KeyError) as error:
        raise DatasetError(f"base model {base_model!r}: its safetensors files do not read ({error})") from None
    if parameters == 0:
        raise DatasetError(f"base model {base_model!r}: no safetensors weights in {folder}")
    return path_digest(folder)


def dataset_digest(task: TaskDefinition, settings: Settings) -> str:
    """sha256 of the dataset file or folder; of its rows (canonical JSON) for a hub dataset."""
    source = Path(str(task.dataset["source"]))
    if source.exists():
        return path_digest(source)
    hub = SimpleNamespace(source=str(task.dataset["source"]), split=str(task.dataset.get("split", "train")))
    rows = load_rows(hub, settings.data)
    return hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()


def data_reuse(session: Session, data_digest: str, *, besides: str | None = None) -> str | None:
    """Why a task on the dataset whose digest is ``data_digest`` gives its hidden split away: the stored
    tasks made of the same whole dataset (but ``besides``), each said played or not; None when none is.
    A subset or superset of a stored dataset has another digest and is not caught."""
    others = [task for task in stored_tasks_with_dataset(session, data_digest) if task.name != besides]
    if not others:
        return None
    named = ", ".join(f"{task.name!r} ({_played(session, task.name)})" for task in others)
    # Each stored task splits with a split key of its own: most of one's hidden rows are the other's training rows.
    return (f"its dataset is the same (sha256 {data_digest[:12]}) as stored task {named}: each task splits its data with "
            "a fresh secret key, so most of one task's hidden rows are rows the other's scripts train on, and a script "
            "can print its training rows to its run logs (settings api.tournament_run_logs)")


def _played(session: Session, name: str) -> str:
    drawn = tournaments_drawing(session, name)
    return f"played in tournament {', '.join(t.name for t in drawn)}" if drawn else "not played yet"


def definition_data_reuse(session: Session, settings: Settings, definition: TaskDefinition) -> str | None:
    """:func:`data_reuse` of a checked task definition's dataset (what ``task check`` reports)."""
    return data_reuse(session, dataset_digest(definition, settings))


@dataclass(frozen=True)
class AddedTask:
    stored: StoredTask
    check: TaskCheck


def new_names_problem(session: Session, name: str, pool: str | None) -> str | None:
    """Why a task named ``name`` may not be stored in ``pool``, or None: a new task's name, and a new pool's,
    follow ``contract.stored_name_problem`` (a pool stored before the rule keeps its name)."""
    if pool is not None and get_pool(session, pool) is None and (problem := stored_name_problem("pool", pool)):
        return problem
    return stored_name_problem("task", name)


def add_task(session: Session, settings: Settings, task_file: TaskFile, pool: str | None, *,
             allow_reused_data: bool = False) -> AddedTask:
    """Check and store a task (flushed, not committed); TaskRefused with the reason otherwise. The pool
    defaults to the task's kind (``text`` or ``image``). A dataset a stored task is made of already is
    refused unless ``allow_reused_data`` (:func:`data_reuse`; the stored task then says so)."""
    name = task_file.name
    if (problem := new_names_problem(session, name, pool)) is not None:  # before the model and dataset are read
        raise TaskRefused(problem)
    if (stored := get_stored_task(session, name)) is not None:
        raise TaskRefused(f"a task named {name!r} is already stored in pool {stored.pool.name!r}; give a task on other data "
                          f"another name, or `trainarena task remove {name}` first if no tournament drew it")
    try:
        definition = replace(resolve_task_file(task_file, settings), split_key=f"{name}:{secrets.token_hex(8)}")
        # The spec and the source are checked (check_task) before anything is hashed: hashing a folder
        # opens every file in it, and a source in the store's state must never be opened.
        check = check_task(definition, settings)
        base_digest = model_digest(definition.base_model)
        data_digest = dataset_digest(definition, settings)
    except (TaskFileError, DatasetError) as error:
        raise TaskRefused(str(with_local_path(error, task_file.path))) from None
    if not check.leak_free:
        shared = ", ".join(repr(key) for key in check.shared_groups[:SHOWN_SHARED_KEYS])
        raise TaskRefused(f"{name}: the split puts group keys on both sides ({shared}); not stored")
    if not allow_reused_data and (reuse := data_reuse(session, data_digest)) is not None:
        raise TaskRefused(f"{name}: {reuse}; not stored. Give it data no stored task has, or store it anyway with "
                          "--allow-reused-data (POST /v1/tasks: allow_reused_data) when its hidden split need not stay secret")
    kind = task_kind(definition.task_type)
    try:
        stored = add_stored_task(session, name=name, pool=pool or kind, kind=kind, definition=definition_json(definition),
                                 base_model_digest=base_digest, dataset_digest=data_digest, hidden_digest=check.hidden_digest,
                                 train_rows=check.train_rows, hidden_rows=check.hidden_rows)
    except StoreError as error:
        raise TaskRefused(str(error)) from None
    return AddedTask(stored, check)


def definition_problem(task: StoredTask) -> str | None:
    """Why a stored task's definition cannot run, or None: older builds stored a budget of inf or nan,
    or one outside today's bounds (task files refuse them now), which would give its runs no deadline
    or no time."""
    problem = budget_problem(task.definition.get("budget_seconds"))
    if problem is None:
        return None
    # The same dataset: refused without --allow-reused-data. A task that cannot run gave no script its rows.
    return (f"{problem}; add the task again with a finite budget in range under a new name (`trainarena task add "
            f"NEW-NAME --file TASK_FILE --pool {task.pool.name} --allow-reused-data`, or with the flags it was added with)")


def stored_definition(task: StoredTask) -> TaskDefinition:
    """The definition a stored task runs with (its split key included); StoredTaskUnusable when it
    cannot run (:func:`definition_problem`). Every path that runs a stored task gets it here."""
    if (problem := definition_problem(task)) is not None:
        raise StoredTaskUnusable(f"stored task {task.name!r}: {problem}")
    return definition_from_json(task.definition)


def stored_task_json(session: Session, task: StoredTask) -> dict[str, Any]:
    definition = task.definition
    return {
        "name": task.name,
        "pool": task.pool.name,
        "kind": task.pool.kind,
        "type": task.task_type,
        "base_model": definition["base_model"],
        "dataset": definition["dataset"].get("source"),
        "budget_seconds": definition["budget_seconds"],
        "direction": score_direction(task.task_type),  # which way its score is better, by its type
        "train_rows": task.train_rows,
        "hidden_rows": task.hidden_rows,
        "digests": {"base_model": task.base_model_digest, "dataset": task.dataset_digest, "hidden_split": task.hidden_digest},
        "task_digest": task_key(definition_from_json(task.definition)),  # its runs' task digest, in every tournament (runs list --task)
        "created_at": task.created_at.isoformat(),
        "data_warning": data_reuse(session, task.dataset_digest, besides=task.name),  # stored with --allow-reused-data
    }
