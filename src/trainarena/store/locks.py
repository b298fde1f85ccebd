"""Cross-process locks on a store, for what several processes may start at the same moment.

- :func:`migration_connection`: a connection in one transaction that no other process can migrate
  concurrently: PostgreSQL takes a transaction-level advisory lock (released at commit or rollback);
  SQLite runs the whole migration inside ``BEGIN EXCLUSIVE`` (pysqlite would otherwise run each
  ``CREATE TABLE`` in autocommit mode, which is how two first starts both created the tables), with
  foreign keys off, as Alembic's batch table copies require, and checked before the commit.
- :func:`named_lock`: a lock held across several transactions (a set-up step that must not run twice
  at once): a session-level advisory lock on PostgreSQL, an ``flock`` on a file in a folder beside a
  SQLite database file (``trainarena.db.locks/NAME.lock``). The file is removed when the lock is
  released: its holder unlinks it before unlocking, and a process that got the lock on a file that is
  no longer at its path (it waited on a file the holder removed) opens the path again and retries, so
  two processes never hold one name at once and per-task lock names leave nothing behind.

Other databases get neither lock: one process at a time must start them.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, Engine, func, select

from trainarena.store.competitors import StoreError

MIGRATION_LOCK = "trainarena-schema-migration"
# In-memory SQLite databases live in one process: a thread lock is all they need.
_IN_PROCESS_LOCKS: dict[str, threading.Lock] = {}


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for PostgreSQL's advisory lock functions."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _sqlite_file(engine: Engine) -> Path | None:
    database = engine.url.database
    return None if not database or database == ":memory:" else Path(database)


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection, in a transaction that commits on success, that migrates alone (see the module)."""
    backend = engine.dialect.name
    if backend == "sqlite":
        with _sqlite_exclusive(engine) as connection:
            yield connection
        return
    with engine.begin() as connection:
        if backend == "postgresql":
            connection.execute(select(func.pg_advisory_xact_lock(advisory_key(MIGRATION_LOCK))))
        yield connection


@contextmanager
def _sqlite_exclusive(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        # PRAGMA foreign_keys is ignored inside a transaction: switched before BEGIN, restored after.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        try:
            connection.exec_driver_sql("BEGIN EXCLUSIVE")  # waits up to the busy timeout for the lock
            try:
                yield connection
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise StoreError(f"the migration left rows whose foreign keys point nowhere: {broken[:5]}")
            except BaseException:
                connection.rollback()
                raise
            connection.commit()
        finally:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")


@contextmanager
def named_lock(engine: Engine, name: str) -> Iterator[None]:
    """Hold the store-wide lock ``name`` (blocking until it is free) for the ``with`` block."""
    backend = engine.dialect.name
    if backend == "postgresql":
        key = advisory_key(name)
        with engine.connect() as connection:
            connection.execute(select(func.pg_advisory_lock(key)))
            connection.commit()  # the lock belongs to the session, not to this transaction
            try:
                yield
            finally:
                connection.execute(select(func.pg_advisory_unlock(key)))
                connection.commit()
        return
    if backend != "sqlite":
        yield
        return
    database = _sqlite_file(engine)
    if database is None:
        with _IN_PROCESS_LOCKS.setdefault(name, threading.Lock()):
            yield
        return
    lock_path = lock_file(database, name)
    try:
        lock_path.parent.mkdir(exist_ok=True)
    except OSError as error:
        raise StoreError(f"could not create {lock_path.parent}: {error}; check that its folder is writable") from error
    with _flocked(lock_path) as handle:
        try:
            yield
        finally:
            lock_path.unlink(missing_ok=True)  # before the unlock: a waiter on this file sees it gone and retries
            fcntl.flock(handle, fcntl.LOCK_UN)


def lock_file(database: Path, name: str) -> Path:
    """Where a SQLite database's named lock is held: in one folder beside the database file."""
    return database.with_name(f"{database.name}.locks") / f"{name}.lock"


@contextmanager
def _flocked(lock_path: Path) -> Iterator[IO[str]]:
    """An open handle on ``lock_path`` holding its exclusive flock, the file still at the path."""
    while True:
        with lock_path.open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX)
            except OSError as error:
                raise StoreError(f"could not lock {lock_path}: {error}; check that its folder is writable") from error
            try:
                current = lock_path.stat()
            except FileNotFoundError:
                current = None
            if current is not None and (current.st_ino, current.st_dev) == _identity(handle):
                yield handle
                return
            fcntl.flock(handle, fcntl.LOCK_UN)  # the holder removed this file while we waited: lock the new one


def _identity(handle: IO[str]) -> tuple[int, int]:
    status = os.fstat(handle.fileno())
    return status.st_ino, status.st_dev
