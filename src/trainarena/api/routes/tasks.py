"""``/v1/pools`` and ``/v1/tasks`` (operators): the stored tasks tournaments draw from, added with the
checks of `trainarena task add` (the base model loads, the dataset validates and splits), listed,
shown and removed (`task list --stored`, `task show`, `task remove`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from trainarena.api.auth import Operator
from trainarena.api.context import app_settings, app_store
from trainarena.api.errors import BODY_RESPONSES, ROLE_RESPONSES, ApiError, ErrorResponse, not_found
from trainarena.api.json_body import RequestBody
from trainarena.api.paging import NAME_MAX_LENGTH, Page, PageWindow
from trainarena.contract import SEED_MAX, TaskType, stored_name_problem
from trainarena.operations.pools import add_task, definition_data_reuse, stored_task_json
from trainarena.store import StoreError, get_pool, get_stored_task, list_pools, list_stored_tasks, remove_stored_task
from trainarena.tasks import resolve_task_file, task_file_from_data, with_local_path
from trainarena.tasks.check import check_task

router = APIRouter(prefix="/v1", tags=["tasks (operators)"], responses=ROLE_RESPONSES)

# Stands in for a task file's path: relative paths in a task sent over HTTP are read against the data dir.
TASK_BODY_SOURCE = "task in the request body"
TaskName = Annotated[str, Path(description="A stored task's name.")]


class PoolOut(BaseModel):
    name: str
    kind: str = Field(description="text or image: every task of a pool is of one kind.")
    tasks: list[str] = Field(description="Its stored tasks' names, oldest first.")
    created_at: datetime


class Digests(BaseModel):
    base_model: str = Field(description="sha256 of the base model's files.")
    dataset: str = Field(description="sha256 of the dataset.")
    hidden_split: str = Field(description="sha256 of the hidden split (the rows no script sees).")


class StoredTaskOut(BaseModel):
    name: str
    pool: str
    kind: str
    type: str = Field(description="instruct, chat, dpo, grpo or image.")
    base_model: str
    dataset: str | None = Field(description="The dataset's source (a path on the server or a hub id).")
    budget_seconds: float
    direction: Literal["lower", "higher"] = Field(description="Which way the task's score is better (its type fixes it).")
    train_rows: int
    hidden_rows: int
    digests: Digests
    task_digest: str = Field(description="The digest its runs are listed under, in every tournament (`/v1/runs?task=`, task leaderboards).")
    created_at: datetime
    data_warning: str | None = Field(description="Set when another stored task has the same dataset (stored with "
                                     "allow_reused_data): which one, whether it was played, and why its hidden split is no secret.")  # fmt: skip


class TaskIn(RequestBody):
    """A task definition: the keys of a task file (examples/tasks), and the pool to store it in."""

    name: str = Field(min_length=1, max_length=NAME_MAX_LENGTH, description="Unique task name: letters, digits, '.', '_', "
                      "'-', starting with a letter or digit.")  # fmt: skip
    type: TaskType = Field(strict=False, description="The task type.")
    base_model: str = Field(min_length=1, description="A save_pretrained folder on the server (absolute, or relative to the "
                            "data dir), a Hugging Face id, or trainarena:NAME (a built-in asset).")  # fmt: skip
    dataset: dict[str, Any] = Field(description="`source` (a file or folder on the server, or a hub dataset id) and the "
                                    "type's field mapping, as in a task file's [dataset] table.")  # fmt: skip
    budget_seconds: float | None = Field(None, gt=0, allow_inf_nan=False, description="Training budget (default settings pools.default_budget_seconds).")
    seed: int | None = Field(None, ge=0, le=SEED_MAX, description=f"The task's seed, 0 to {SEED_MAX} (default 0).")
    pool: str | None = Field(None, min_length=1, max_length=NAME_MAX_LENGTH, description="The pool (default: text or "
                                "image, by kind); a new pool's name follows the task name rule.")  # fmt: skip
    allow_reused_data: bool = Field(False, description="Store it even when a stored task has the same dataset (refused "
                                    "otherwise: the other task's scripts trained on most of its hidden rows).")  # fmt: skip


class RemovedOut(BaseModel):
    removed: str = Field(description="The removed task's name.")


@router.get("/pools", response_model=list[PoolOut], summary="The task pools (operators)")
def pools(_operator: Operator, request: Request) -> list[PoolOut]:
    with app_store(request).session() as session:
        return [PoolOut(name=p.name, kind=p.kind, tasks=[t.name for t in p.tasks], created_at=p.created_at) for p in list_pools(session)]


@router.get("/tasks", response_model=Page[StoredTaskOut], summary="List stored tasks (operators)")
def list_all(
    _operator: Operator,
    request: Request,
    window: PageWindow,
    pool: Annotated[str | None, Query(description="Only this pool's tasks.")] = None,
) -> Page[StoredTaskOut]:
    with app_store(request).session() as session:
        if pool is not None and get_pool(session, pool) is None:
            raise not_found("pool", pool)
        tasks, more = window.page(list_stored_tasks(session, pool))
        return Page[StoredTaskOut](data=[StoredTaskOut(**stored_task_json(session, t)) for t in tasks], has_more=more)


@router.get("/tasks/{name:path}", response_model=StoredTaskOut, summary="One stored task (operators)")
def show(name: TaskName, _operator: Operator, request: Request) -> StoredTaskOut:
    with app_store(request).session() as session:
        task = get_stored_task(session, name)
        if task is None:
            raise not_found("task", name)
        return StoredTaskOut(**stored_task_json(session, task))


@router.post("/tasks", status_code=201, response_model=StoredTaskOut, summary="Check and store a task in a pool (operators)",
             responses=BODY_RESPONSES)
def add(body: TaskIn, _operator: Operator, request: Request) -> StoredTaskOut:
    """`trainarena task add --file` with the task file's content as the body: the base model must load,
    the dataset validate and split as `task check` does (with the operator's secret split seed).
    Refusals are 422 naming the model, the dataset key or the row, or the stored task with the same
    dataset (unless `allow_reused_data`)."""
    settings = app_settings(request)
    data = body.model_dump(exclude={"pool", "allow_reused_data"}, exclude_none=True, mode="json")
    data.setdefault("budget_seconds", settings.pools.default_budget_seconds)
    try:
        task_file = task_file_from_data(settings.data_dir / TASK_BODY_SOURCE, data, written=False, rules=settings.data)
        with app_store(request).transaction() as session:
            added = add_task(session, settings, task_file, body.pool, allow_reused_data=body.allow_reused_data)
            record = stored_task_json(session, added.stored)
    # A definition that does not resolve is the request's fault, whatever stage refuses it (TaskRefused,
    # TaskFileError, a path the file system rejects).
    except (ValueError, TypeError, OSError) as error:
        raise ApiError(422, "task_refused", str(error), name=body.name) from None
    return StoredTaskOut(**record)


class TaskCheckOut(BaseModel):
    """What `trainarena task check --json` prints: the split's sizes, the rows dropped and why, the leak check."""

    ok: bool = Field(description="The split holds: no group key on both sides.")
    name: str
    type: str
    base_model: str
    source: str | None
    rows: int
    train_rows: int
    hidden_rows: int
    train_groups: int
    hidden_groups: int
    dropped_rows: int
    dropped: list[dict[str, Any]] = Field(description="Rows left out, by reason: {reason, rows}.")
    leak_check: dict[str, Any] = Field(description="{passed, shared_groups}: group keys found on both sides.")
    data_warning: str | None = Field(description="Set when a stored task has the same dataset: POST /v1/tasks refuses "
                                     "it unless allow_reused_data (which task, whether it was played, why).")  # fmt: skip


@router.post("/tasks/check", response_model=TaskCheckOut, summary="Check a task without storing it (operators)",
             responses=BODY_RESPONSES)
def check(body: TaskIn, _operator: Operator, request: Request) -> TaskCheckOut:
    """`trainarena task check` on a task sent as the body (the pool and allow_reused_data are ignored):
    the dataset loads, validates and splits, nothing is stored; `data_warning` names a stored task with
    the same dataset. Refusals are 422 naming the dataset key or the row."""
    settings = app_settings(request)
    data = body.model_dump(exclude={"pool", "allow_reused_data"}, exclude_none=True, mode="json")
    data.setdefault("budget_seconds", settings.pools.default_budget_seconds)
    source = settings.data_dir / TASK_BODY_SOURCE
    if (problem := stored_name_problem("task", body.name)) is not None:  # what POST /v1/tasks would refuse
        raise ApiError(422, "task_refused", problem, name=body.name)
    try:
        task = resolve_task_file(task_file_from_data(source, data, written=False, rules=settings.data), settings)
        checked = check_task(task, settings)  # before the dataset is hashed, as task add does
        with app_store(request).session() as session:
            return TaskCheckOut(**checked.to_json(), data_warning=definition_data_reuse(session, settings, task))
    except (ValueError, TypeError, OSError) as error:  # as for POST /v1/tasks
        raise ApiError(422, "task_refused", str(with_local_path(error, source)), name=body.name) from None


@router.delete("/tasks/{name:path}", response_model=RemovedOut, summary="Remove a stored task no tournament drew (operators)",
               responses={409: {"model": ErrorResponse, "description": "A tournament drew it"}})  # fmt: skip
def remove(name: TaskName, _operator: Operator, request: Request) -> RemovedOut:
    with app_store(request).transaction() as session:
        if get_stored_task(session, name) is None:
            raise not_found("task", name)
        try:
            remove_stored_task(session, name)
        except StoreError as error:
            raise ApiError(409, "conflict", str(error), task=name) from None
    return RemovedOut(removed=name)
