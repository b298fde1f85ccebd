from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from trainarena.settings import Settings
from trainarena.store import Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(Settings(data_dir=tmp_path)) as opened:
        yield opened


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
