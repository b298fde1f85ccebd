"""Repository functions for stored tasks, pools and pool tournaments' draws (session injected, no commits)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trainarena.contract import stored_name_problem
from trainarena.store.competitors import StoreError
from trainarena.store.models import StoredTask, TaskPool, Tournament, TournamentDraw
from trainarena.store.tournaments import TOURNAMENT_KINDS


def get_pool(session: Session, name: str) -> TaskPool | None:
    return session.scalar(select(TaskPool).where(TaskPool.name == name))


def require_pool(session: Session, name: str) -> TaskPool:
    pool = get_pool(session, name)
    if pool is None:
        known = ", ".join(p.name for p in list_pools(session)) or "none yet"
        raise StoreError(f"no task pool named {name!r} (pools: {known}); add tasks to it with `trainarena task add ... --pool {name}`")
    return pool


def list_pools(session: Session) -> list[TaskPool]:
    return list(session.scalars(select(TaskPool).order_by(TaskPool.name)))


def get_stored_task(session: Session, name: str) -> StoredTask | None:
    return session.scalar(select(StoredTask).where(StoredTask.name == name))


def list_stored_tasks(session: Session, pool: str | None = None) -> list[StoredTask]:
    """Stored tasks by name, of one pool when ``pool`` is given (StoreError when no such pool)."""
    query = select(StoredTask).order_by(StoredTask.name)
    if pool is not None:
        query = query.where(StoredTask.pool_id == require_pool(session, pool).id)
    return list(session.scalars(query))


def stored_tasks_with_dataset(session: Session, dataset_digest: str) -> list[StoredTask]:
    """The stored tasks made of the dataset whose digest is ``dataset_digest``, oldest first."""
    return list(session.scalars(select(StoredTask).where(StoredTask.dataset_digest == dataset_digest).order_by(StoredTask.id)))


def add_stored_task(
    session: Session,
    *,
    name: str,
    pool: str,
    kind: str,
    definition: dict[str, Any],
    base_model_digest: str,
    dataset_digest: str,
    hidden_digest: str,
    train_rows: int,
    hidden_rows: int,
) -> StoredTask:
    """Record a checked task in ``pool`` (made on first use with the task's kind; a pool holds one
    kind only). Flushed, not committed. New task and pool names follow ``contract.stored_name_problem``."""
    if kind not in TOURNAMENT_KINDS:
        raise StoreError(f"task kind {kind!r} is not one of {TOURNAMENT_KINDS}")
    if (problem := stored_name_problem("task", name)) is not None:
        raise StoreError(problem)
    if get_stored_task(session, name) is not None:
        raise StoreError(f"a task named {name!r} is already stored; choose another name or `trainarena task remove {name}` first")
    row = get_pool(session, pool)
    if row is None:
        if (problem := stored_name_problem("pool", pool)) is not None:  # a pool stored earlier keeps its name
            raise StoreError(problem)
        row = TaskPool(name=pool, kind=kind)
        session.add(row)
    elif row.kind != kind:
        raise StoreError(f"pool {pool!r} holds {row.kind} tasks and {name!r} is a {kind} task; use another --pool")
    task = StoredTask(name=name, pool=row, task_type=definition["task_type"], definition=definition,
                      base_model_digest=base_model_digest, dataset_digest=dataset_digest, hidden_digest=hidden_digest,
                      train_rows=train_rows, hidden_rows=hidden_rows)
    session.add(task)
    session.flush()
    return task


def tournaments_drawing(session: Session, task_name: str) -> list[Tournament]:
    """The tournaments that drew the stored task ``task_name``."""
    draws = session.scalars(select(TournamentDraw).order_by(TournamentDraw.tournament_id))
    ids = [draw.tournament_id for draw in draws if task_name in draw.task_names]
    return [session.get_one(Tournament, tournament_id) for tournament_id in ids]


def remove_stored_task(session: Session, name: str) -> StoredTask:
    """Delete a stored task, refused when a tournament drew it (its record must stay explainable).
    An emptied pool goes with its last task unless a tournament drew from it."""
    task = get_stored_task(session, name)
    if task is None:
        raise StoreError(f"no stored task named {name!r}; see `trainarena task list --stored`")
    used = tournaments_drawing(session, name)
    if used:
        names = ", ".join(f"{t.name} (id {t.id})" for t in used)
        raise StoreError(f"task {name!r} was drawn by tournament(s) {names}: it stays so their records can be "
                         "audited. Its dataset is spent: a new task on it is refused (each task splits it with a key of "
                         "its own, so this one's scripts trained on most of the new task's hidden rows); store new data")
    pool = task.pool
    session.delete(task)
    session.flush()
    drawn_from = session.scalar(select(TournamentDraw).where(TournamentDraw.pool_id == pool.id).limit(1))
    if not pool.tasks and drawn_from is None:
        session.delete(pool)
    return task


def get_draw(session: Session, tournament_id: int) -> TournamentDraw | None:
    return session.get(TournamentDraw, tournament_id)
