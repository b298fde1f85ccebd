"""Fixtures of the API tests: the API over a store holding a finished tournament, or over an empty one
(api_client.Api: a key of each role and a revoked one), and a client of the first."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_client import Api, make_keys
from cli_store import build_finished_store
from fastapi.testclient import TestClient

from trainarena.settings import Settings
from trainarena.store import open_store


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
