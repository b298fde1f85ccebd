"""Engine, sessions and schema migration of the record store.

``open_store(settings)`` builds the engine for ``settings.db_url`` (SQLite under the data directory by
default, any SQLAlchemy URL such as PostgreSQL by setting), brings the schema to the latest Alembic
revision shipped inside this package (no ``alembic.ini`` needed), and hands out sessions. Several
processes may open a fresh store at once: the migration runs under a lock (``store/locks.py``) and the
ones that wait find the schema done. Nothing here runs at import time.
"""

from __future__ import annotations

import os
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
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from trainarena.settings import Settings
from trainarena.store.adhoc import end_runs_of_dead_drivers
from trainarena.store.locks import migration_connection

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Seconds a SQLite writer waits for a lock held by another process (CLI + validator at once).
SQLITE_BUSY_TIMEOUT_S = 30
# SQLite result codes (``sqlite_errorname`` less its extension) that say the database file cannot be
# used now: locked past the busy timeout, gone, unreadable, moved, full. A query that is wrong (no such
# column) is SQLITE_ERROR, and stays the bug it is.
_SQLITE_UNAVAILABLE = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_READONLY",
                                 "SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_FULL", "SQLITE_PERM"})
# PostgreSQL SQLSTATEs of a server that is gone or will not serve: class 08 (connection exception) and
# operator intervention (admin or crash shutdown, cannot connect now).
_SERVER_GONE_STATES = ("08", "57P01", "57P02", "57P03")


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


class StoreUnavailable(SQLAlchemyError):
    """The database the settings name cannot be reached (no server, a wrong password, a missing driver),
    or went away while in use (a lost connection, a SQLite file locked or gone). A SQLAlchemyError, as
    the driver's error it stands for: what retries a busy or unreachable store (a lease's heartbeat)
    still catches it."""


class StoreFileLost(StoreUnavailable):
    """The SQLite file the store opened was deleted or replaced while in use (``_SqliteFileWatch``).
    Unlike the other causes of StoreUnavailable it does not pass with time: the store refuses that
    path for good, and only a new process opens the file now there."""

    def __init__(self, path: str) -> None:
        super().__init__(f"the database file {path} was deleted or replaced while in use; restart to use the file now at that path")
        self.path = path

    def restart_needed(self, runner: str, *, show_path: bool = True) -> str:
        """The sentence for those who see it: what happened and that ``runner`` ("the server", "the
        command") must be restarted. ``show_path=False`` for callers the path is not for (the API's)."""
        file = f"the database file {self.path}" if show_path else "the database file"
        return f"{file} was deleted or replaced while {runner} was running; {runner} must be restarted to use the file now at that path"


def _first_line(error: BaseException) -> str:
    """The driver's own message, first line (or the error's type where it gave none)."""
    return (str(getattr(error, "orig", None) or error).strip().splitlines() or [type(error).__name__])[0]


def _database_gone(context: ExceptionContext) -> bool:
    """Whether a database error says the database cannot be used now, rather than that the query is wrong."""
    if context.is_disconnect or context.connection is None:  # lost, or no connection could be made
        return True
    error = context.original_exception
    sqlite_code = getattr(error, "sqlite_errorname", None)
    if sqlite_code is not None:
        return "_".join(sqlite_code.split("_")[:2]) in _SQLITE_UNAVAILABLE
    return (getattr(error, "sqlstate", None) or getattr(error, "pgcode", None) or "").startswith(_SERVER_GONE_STATES)


def _raise_if_gone(context: ExceptionContext) -> None:
    """A database that went away mid-command is StoreUnavailable naming it (password hidden), as one
    that cannot be opened is; a pre-ping's failure is left to the pool, which connects again. A stop
    raised by a signal handler mid-command (``KeyboardInterrupt``, ``runs.DriverStopped``: no
    ``Exception``) goes on as it is."""
    if not isinstance(context.original_exception, Exception):
        return
    if not context.is_pre_ping and _database_gone(context):
        url = context.engine.url.render_as_string(hide_password=True)  # present but for a pre-ping
        raise StoreUnavailable(f"the database {url} became unavailable: {_first_line(context.original_exception)}")


class _SqliteFileWatch:
    """Refuses a connection once the SQLite file the store opened was deleted or replaced: SQLite keeps
    working on the file it has open, so every write after that would be lost without a word. Checked as
    a connection leaves the pool (each session's transaction: one stat, about a microsecond) and before
    a new one is made (SQLite would create an empty file in its place). Once refused, always: the file
    made next may take the old one's inode number."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._identity = self._current()  # None until the first connection creates the file
        self._refused = False

    def _current(self) -> tuple[int, int] | None:
        try:
            found = os.stat(self._path)
        except FileNotFoundError:
            return None
        return found.st_dev, found.st_ino

    def check(self, *_event: Any) -> None:
        current = self._current() if not self._refused else None
        if self._identity is None:
            self._identity = current
        elif self._refused or current != self._identity:
            self._refused = True
            raise StoreFileLost(self._path)


def _watched_file(engine: Engine) -> str | None:
    """The file of a file-backed SQLite engine; None for in-memory SQLite and servers."""
    database = engine.url.database
    if engine.url.get_backend_name() != "sqlite" or database in (None, "", ":memory:"):
        return None
    return database


class Store:
    """The record store: an engine plus a session factory. Build one with :func:`open_store`. A database
    error that says the database went away is StoreUnavailable (``_raise_if_gone``), and so is a SQLite
    file deleted or replaced under it (``_SqliteFileWatch``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        event.listen(engine, "handle_error", _raise_if_gone)
        if (path := _watched_file(engine)) is not None:
            watch = _SqliteFileWatch(path)
            event.listen(engine, "do_connect", watch.check)
            event.listen(engine.pool, "checkout", watch.check)
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


def open_store_url(url: str, *, migrate: bool = True) -> Store:
    """Open the store at a SQLAlchemy URL, migrating its schema to the latest revision (the first
    connection: StoreUnavailable naming the database, password hidden, when it fails), then ending
    the runs of this host's dead processes (``end_runs_of_dead_drivers``)."""
    try:
        engine = make_engine(url)
        if migrate:
            upgrade_schema(engine)
    except (OperationalError, InterfaceError, ImportError) as error:
        raise StoreUnavailable(f"cannot open the database {make_url(url).render_as_string(hide_password=True)}: "
                               f"{_first_line(error)}") from None
    store = Store(engine)
    if migrate:
        # Every command that opens the store ends the runs a killed process of this host left running,
        # so none reads "running" for good (the schema must be current to write them).
        with store.transaction() as session:
            end_runs_of_dead_drivers(session)
    return store


def open_store(settings: Settings, *, migrate: bool = True) -> Store:
    """Open the store the settings name (``settings.db_url``), migrating its schema to the latest revision."""
    return open_store_url(settings.db_url, migrate=migrate)
