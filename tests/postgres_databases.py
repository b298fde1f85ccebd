"""Throwaway databases on the machine's PostgreSQL cluster, for the tests (tests/conftest.py).

One admin connection per test session makes them with SQL: ``empty()`` for the migration tests, and
``fresh()`` for every test that runs on PostgreSQL instead of SQLite (``--store postgresql``): a copy
of one template migrated once per session (``CREATE DATABASE ... TEMPLATE``), handed back with
``release()`` and emptied for the next test. Emptying (DELETE, the template's rows and sequence values
put back) takes milliseconds where dropping and creating a database took seconds on a busy disk
(each forces writes to disk).
Names carry the test process's id, so a session killed before it cleaned up leaves databases the next
session drops (``drop_orphans``) without touching those of another session still running.
"""

from __future__ import annotations

import getpass
import itertools
import os
import subprocess
from typing import Any

from sqlalchemy.engine import make_url

# Local connections use peer authentication: a role named like the user running the tests.
SOCKET_DIR = "/var/run/postgresql"
PREFIX = "trainarena_pytest_"  # apart from older sessions' trainarena_test_<hex>
# A test database need not survive a crash of the machine: commits do not wait for the disk.
FAST_COMMITS = "-c synchronous_commit=off"


def postgres_dialect() -> str | None:
    """The SQLAlchemy dialect of the installed PostgreSQL driver, or None when there is none."""
    for module, dialect in (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2")):
        try:
            __import__(module)
        except ImportError:
            continue
        return dialect
    return None


def as_postgres(command_line: str) -> bool:
    """Run a command as the cluster's owner (``postgres``); whether it succeeded."""
    result = subprocess.run(["su", "postgres", "-c", command_line], capture_output=True, text=True, check=False)
    return result.returncode == 0


def _tables(connection: Any) -> list[str]:
    """The tables of the store's schema in a database (Alembic's own left out)."""
    return sorted(row[0] for row in connection.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"))


def _copy_out(connection: Any, table: str) -> bytes:
    with connection.cursor().copy(f'COPY "{table}" TO STDOUT') as copy:
        return b"".join(bytes(block) for block in copy)


_SEQUENCES = "SELECT format('%I.%I', schemaname, sequencename), coalesce(last_value, 1), last_value IS NOT NULL FROM pg_sequences"


class PostgresDatabases:
    """Creates, empties and drops the session's databases; ``unavailable`` says why there are none, else None."""

    def __init__(self) -> None:
        self._names = (f"{PREFIX}{os.getpid()}_{n}" for n in itertools.count())
        self._created: list[str] = []
        self._idle: list[str] = []  # migrated databases emptied for the next test
        self._template: str | None = None
        self._head: str | None = None
        self._tables: list[str] = []
        self._seed: dict[str, bytes] = {}  # each table's rows in the template (COPY's text format)
        self._emptying = ""  # the SQL that empties a copy of the template, its sequences as they were
        self._admin: Any = None
        self.user = getpass.getuser()
        self.unavailable = self._connect()

    def _connect(self) -> str | None:
        try:
            import psycopg
        except ImportError:
            return "no PostgreSQL driver installed (psycopg)"
        as_postgres(f"createuser --superuser {self.user}")  # fails harmlessly when the role exists
        try:
            self._admin = self._connection("postgres")
        except psycopg.OperationalError as error:
            return f"PostgreSQL is not running here (pg_ctlcluster 15 main start): {str(error).strip()}"
        self.drop_orphans()
        return None

    def _connection(self, name: str) -> Any:
        import psycopg

        return psycopg.connect(dbname=name, host=SOCKET_DIR, user=self.user, autocommit=True, options=FAST_COMMITS)

    def url(self, name: str) -> str:
        return make_url(f"{postgres_dialect()}://{self.user}@/{name}").set(
            query={"host": SOCKET_DIR, "options": FAST_COMMITS}
        ).render_as_string(hide_password=False)

    def _create(self, template: str = "template0") -> str:
        name = next(self._names)
        self._admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        self._created.append(name)
        return name

    def empty(self) -> str:
        """The URL of a new database with no schema (``drop`` it after use)."""
        return self.url(self._create())

    def fresh(self) -> str:
        """The URL of an empty database with the schema at the latest migration (``release`` it after use)."""
        if self._idle:
            return self.url(self._idle.pop())
        if self._template is None:
            from trainarena.store.database import make_engine, upgrade_schema

            template = self._create()
            engine = make_engine(self.url(template))
            upgrade_schema(engine)
            engine.dispose()  # a template must have no connection while it is copied
            self._template = template
            with self._connection(template) as connection:
                self._head = connection.execute("SELECT version_num FROM alembic_version").fetchone()[0]
                self._tables = _tables(connection)
                self._seed = {table: _copy_out(connection, table) for table in self._tables}
                sequences = connection.execute(_SEQUENCES).fetchall()
            self._emptying = ";".join([
                "SET LOCAL session_replication_role = replica",  # no foreign-key order to follow
                *(f'DELETE FROM "{table}"' for table in self._tables),
                *(f"SELECT setval('{name}', {value}, {called})" for name, value, called in sequences),
            ])
        return self.url(self._create(self._template))

    def release(self, url: str) -> None:
        """Close every connection to a database from ``fresh`` and empty it for the next test; one whose
        schema a test changed is dropped instead."""
        name = make_url(url).database
        self._admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        with self._connection(name) as connection:
            tables = _tables(connection)
            version = connection.execute("SELECT max(version_num) FROM alembic_version").fetchone()[0]
            if tables != self._tables or version != self._head:
                connection.close()
                self.drop(url)
                return
            with connection.transaction():
                connection.execute(self._emptying)  # one round trip
                for table, rows in self._seed.items():  # rows the migrations put in (the log's state row)
                    if rows:
                        with connection.cursor().copy(f'COPY "{table}" FROM STDIN') as copy:
                            copy.write(rows)
        self._idle.append(name)

    def copy(self, url: str) -> str:
        """The URL of a new database holding what the database at ``url`` holds (no one may be connected)."""
        return self.url(self._create(make_url(url).database))

    def drop(self, url: str) -> None:
        """Drop a database made here, closing any connection a test left open to it."""
        name = make_url(url).database
        self._admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._created.remove(name)

    def drop_orphans(self) -> None:
        """Drop the databases of test sessions whose process is gone."""
        rows = self._admin.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{PREFIX}%",)).fetchall()
        for (name,) in rows:
            pid, _, _number = name.removeprefix(PREFIX).partition("_")
            if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                self._admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        if self._admin is None:
            return
        for name in reversed(self._created):
            self._admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._admin.close()
