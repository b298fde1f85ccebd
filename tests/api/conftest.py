"""Fixtures of the API tests: the API over a store holding a finished tournament, or over an empty one
(api_client.Api: a key of each role and a revoked one), and a client of the first; for the files and
jobs tests, settings under the test's folder, an open store, one key per role (as headers), and a client
over that store; for the models tests, a store holding customers' and a champion's models (model_world)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_client import Api, make_keys
from cli_store import build_finished_store
from fastapi.testclient import TestClient
from model_world import World, model_world

from trainarena.api import create_app
from trainarena.settings import Settings
from trainarena.store import Store, open_store
from trainarena.store.api_keys import create_key
from trainarena.store.models import ApiRole


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """The API over a store holding one finished tournament."""
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    finished = build_finished_store(tmp_path / "data")
    settings = Settings()
    with open_store(settings) as store:
        yield Api(settings, store, make_keys(store), finished)


@pytest.fixture
def empty_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """The API over an empty store (but for the keys)."""
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    settings = Settings()
    with open_store(settings) as store:
        yield Api(settings, store, make_keys(store), None)


@pytest.fixture
def client(api: Api) -> Iterator[TestClient]:
    with api.client() as client:
        yield client


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
def jobs_client(api_settings: Settings, api_store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings, store=api_store)) as test_client:
        yield test_client



@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with model_world(tmp_path) as built:
        yield built
