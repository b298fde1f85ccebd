"""Fixtures of the records tests: one recorded tournament and its clean bundle per session, copied by
each test that tampers with them. The CLI tests' scripted tournament (tests/cli/cli_store.py) serves
them too, as it does the dashboard's."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from postgres_databases import PostgresDatabases

sys.path[:0] = [str(Path(__file__).parents[1] / "cli")]

from records_store import RecordedStore, build_recorded_store  # noqa: E402 - found through sys.path


@pytest.fixture(scope="session")
def recorded(tmp_path_factory: pytest.TempPathFactory, store_databases: PostgresDatabases | None) -> RecordedStore:
    """A finished tournament with a boss round, every run, round and decision signed and logged (in a
    database of the session's own under --store postgresql: each test's database is emptied after it)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        if store_databases is not None:
            monkeypatch.setenv("TRAINARENA_DATABASE_URL", store_databases.fresh())
        return build_recorded_store(tmp_path_factory.mktemp("recorded") / "data")


@pytest.fixture(scope="session")
def clean_bundle(recorded: RecordedStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return recorded.export(tmp_path_factory.mktemp("bundles") / "clean")


@pytest.fixture
def bundle(clean_bundle: Path, tmp_path: Path) -> Path:
    """A copy of the clean bundle to tamper with."""
    return Path(shutil.copytree(clean_bundle, tmp_path / "bundle"))


@pytest.fixture
def store_copy(recorded: RecordedStore, tmp_path: Path, store_databases: PostgresDatabases | None,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordedStore]:  # fmt: skip
    """A copy of the recorded store to tamper with (its database is the test's TRAINARENA_DATABASE_URL)."""
    if store_databases is None:
        yield recorded.copy(tmp_path / "data")
        return
    copy = recorded.copy(tmp_path / "data", store_databases.copy(recorded.database_url))
    monkeypatch.setenv("TRAINARENA_DATABASE_URL", copy.database_url)
    yield copy
    store_databases.release(copy.database_url)
