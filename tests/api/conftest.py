"""Shared API fixtures: settings under the test's folder, an open store, one key per role (as headers), and a
client factory (``TestClient`` over ``create_app`` with that store)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from trainarena.api import create_app
from trainarena.settings import Settings
from trainarena.store import Store, open_store
from trainarena.store.api_keys import create_key
from trainarena.store.models import ApiRole


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def api_store(api_settings: Settings) -> Iterator[Store]:
    with open_store(api_settings) as store:
        yield store


@pytest.fixture
def auth(api_store: Store) -> dict[str, dict[str, str]]:
    """Authorization headers of ``operator``, ``competitor``, ``customer`` and a second customer ``other``."""
    names = {"operator": ApiRole.OPERATOR, "competitor": ApiRole.COMPETITOR, "customer": ApiRole.CUSTOMER,
             "other": ApiRole.CUSTOMER}  # fmt: skip
    with api_store.transaction() as session:
        return {name: {"Authorization": f"Bearer {create_key(session, name, role).secret}"} for name, role in names.items()}


@pytest.fixture
def client(api_settings: Settings, api_store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings, store=api_store)) as test_client:
        yield test_client

