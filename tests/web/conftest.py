"""Fixtures of the dashboard tests: the store of ``web_store`` in a temporary data dir, and a client."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

# The CLI tests' scripted store (tests/cli/cli_store.py) serves these tests too, as it does the API's.
sys.path[:0] = [str(Path(__file__).parents[1] / "cli")]

from web_store import DashboardStore, build_dashboard_store  # noqa: E402

from trainarena.api import create_app  # noqa: E402
from trainarena.settings import Settings  # noqa: E402
from trainarena.store import open_store  # noqa: E402


@pytest.fixture
def dashboard_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DashboardStore:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    return build_dashboard_store(tmp_path / "data")


@pytest.fixture
def client(dashboard_store: DashboardStore) -> Iterator[TestClient]:
    settings = Settings()
    with open_store(settings) as store, TestClient(create_app(settings, store=store)) as test_client:
        yield test_client
