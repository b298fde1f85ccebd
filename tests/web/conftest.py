"""Fixtures of the dashboard tests: the store of ``web_store`` in a temporary data dir, and a client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from web_store import DashboardStore, build_dashboard_store

from trainarena.api import create_app
from trainarena.settings import Settings
from trainarena.store import open_store


@pytest.fixture
def dashboard_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DashboardStore:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    return build_dashboard_store(tmp_path / "data")


@pytest.fixture
def client(dashboard_store: DashboardStore) -> Iterator[TestClient]:
    settings = Settings()
    with open_store(settings) as store, TestClient(create_app(settings, store=store)) as test_client:
        yield test_client
