"""Engine, sessions and schema migration of the record store.

``open_store(settings)`` builds the engine for ``settings.db_url`` (SQLite under the data directory by
default, any SQLAlchemy URL such as PostgreSQL by setting), brings the schema to the latest Alembic
revision shipped inside this package (no ``alembic.ini`` needed), and hands out sessions. Several
processes may open a fresh store at once: the migration runs under a lock (``store/locks.py``) and the
ones that wait find the schema done. Nothing here runs at import time.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from trainarena.settings import Settings
from trainarena.store.locks import migration_connection

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Seconds a SQLite writer waits for a lock held by another process (CLI + validator at once).
SQLITE_BUSY_TIMEOUT_S = 30


def alembic_config(connection: Any = None, url: str | None = None) -> Config:
    """An Alembic config for the migrations shipped in the package; ``connection`` is used if given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def _enable_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (status, dashboard) work while the orchestrator writes; SQLite leaves
    # foreign keys off unless asked on every connection.
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
    cursor.execute("PRAGMA foreign_keys=ON")
    _use_wal(cursor)
    cursor.close()


def _use_wal(cursor: Any) -> None:
    """Switch the database file to WAL once (the mode is stored in the file). Switching needs the file to
    itself, and SQLite answers "database is locked" at once, without its busy handler, while another
    process holds a lock (several drivers opening a new store together): retry until the busy timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout, and its directory made."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
    event.listen(engine, "connect", _enable_sqlite_pragmas)
    return engine


def _at_head(engine: Engine) -> bool:
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads()) == heads


def upgrade_schema(engine: Engine, revision: str = "head") -> None:
    """Run the packaged Alembic migrations up to ``revision`` (idempotent, safe to call from several
    processes at once: one migrates under the lock, the others then find nothing left to do)."""
    if revision == "head" and _at_head(engine):
        return  # the common case takes no lock
    with migration_connection(engine) as connection:
        command.upgrade(alembic_config(connection), revision)


class Store:
    """The record store: an engine plus a session factory. Build one with :func:`open_store`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # expire_on_commit=False: rows stay readable after the transaction that loaded them ends.
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def session(self) -> Session:
        """A new session; the caller commits or rolls back (use it as a context manager)."""
        return self._sessions()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on an exception."""
        with self._sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StoreUnavailable(RuntimeError):
    """The database the settings name cannot be reached (no server, a wrong password, a missing driver)."""


def open_store_url(url: str, *, migrate: bool = True) -> Store:
    """Open the store at a SQLAlchemy URL, migrating its schema to the latest revision (the first
    connection: StoreUnavailable naming the database, password hidden, when it fails)."""
    try:
        engine = make_engine(url)
        if migrate:
            upgrade_schema(engine)
    except (OperationalError, InterfaceError, ImportError) as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise StoreUnavailable(f"cannot open the database {make_url(url).render_as_string(hide_password=True)}: {reason}") from None
    return Store(engine)


def open_store(settings: Settings, *, migrate: bool = True) -> Store:
    """Open the store the settings name (``settings.db_url``), migrating its schema to the latest revision."""
    return open_store_url(settings.db_url, migrate=migrate)
