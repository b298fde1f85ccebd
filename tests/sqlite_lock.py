"""Another process's write lock on a SQLite store, for tests of a database that cannot be used."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on the SQLite file at ``path``, held until the block ends: writers wait for it
    (the busy timeout), then fail with "database is locked"."""
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def write_lock_free(db_url: str) -> bool:
    """Whether another connection could take the write lock of the SQLite store at ``db_url`` right now:
    no transaction that wrote is open on it. Always true of another database (rows are locked there)."""
    if not db_url.startswith("sqlite:///"):
        return True
    other = sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:  # database is locked
        return False
    finally:
        other.close()
