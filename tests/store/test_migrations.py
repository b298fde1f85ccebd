from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from trainarena.settings import Settings
from trainarena.store import Base, make_engine, open_store, open_store_url
from trainarena.store.database import alembic_config

EXPECTED_TABLES = {
    "competitor", "tournament", "tournament_entrant", "round", "match", "task", "run", "evaluation",
    "champion_history", "weight", "alembic_version",
}


def test_fresh_sqlite_file_is_migrated_to_head(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "nested" / "data")
    with open_store(settings) as store:
        assert (tmp_path / "nested" / "data" / "trainarena.db").is_file()
        assert set(inspect(store.engine).get_table_names()) == EXPECTED_TABLES
        with store.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0001"


def test_opening_twice_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'twice.db'}"
    open_store_url(url).close()
    with open_store_url(url) as store, store.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1


def _drift(engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def test_models_match_the_migrations(tmp_path: Path) -> None:
    with open_store_url(f"sqlite:///{tmp_path / 'drift.db'}") as store:
        assert _drift(store.engine) == []


def test_downgrade_to_base_and_back(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'down.db'}")
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "head")
            command.downgrade(alembic_config(connection), "base")
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "head")
        assert set(inspect(engine).get_table_names()) == EXPECTED_TABLES
    finally:
        engine.dispose()


def _postgres_driver() -> str | None:
    for module, dialect in (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2")):
        try:
            __import__(module)
        except ImportError:
            continue
        return dialect
    return None


def _as_postgres(command_line: str) -> bool:
    result = subprocess.run(["su", "postgres", "-c", command_line], capture_output=True, text=True, check=False)
    return result.returncode == 0


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throwaway database on the local PostgreSQL cluster (dropped afterwards), or a skip."""
    explicit = os.environ.get("TRAINARENA_TEST_POSTGRES_URL")
    if explicit:
        yield explicit
        return
    dialect = _postgres_driver()
    if dialect is None:
        pytest.skip("no PostgreSQL driver installed (psycopg or psycopg2)")
    if shutil.which("createdb") is None and not Path("/usr/lib/postgresql").is_dir():
        pytest.skip("PostgreSQL is not installed")
    name = f"trainarena_test_{uuid.uuid4().hex[:8]}"
    user = getpass.getuser()  # local connections use peer authentication: a role named like us
    _as_postgres(f"createuser --superuser {user}")  # fails harmlessly when the role exists
    if not _as_postgres(f"createdb --owner {user} {name}"):
        pytest.skip("PostgreSQL is not running (pg_ctlcluster 15 main start)")
    try:
        yield f"{dialect}://{user}@/{name}?host=/var/run/postgresql"
    finally:
        _as_postgres(f"dropdb --if-exists {name}")


def test_migrations_on_postgresql(postgres_url: str) -> None:
    with open_store_url(postgres_url) as store:
        assert set(inspect(store.engine).get_table_names()) == EXPECTED_TABLES
        assert _drift(store.engine) == []
