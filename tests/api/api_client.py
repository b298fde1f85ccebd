"""The API tests' client over a store: the settings, the store, a key of each role (and a revoked one),
and the finished tournament it holds (tests/cli/cli_store.py, built with a scripted executor)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient

# The stores and data other test folders build serve these tests too (cli_store, operator_data, disguised).
sys.path[:0] = [str(Path(__file__).parents[1] / folder) for folder in ("cli", "operations", "submissions")]

from cli_store import FinishedStore  # noqa: E402

from trainarena.api import create_app  # noqa: E402
from trainarena.settings import Settings  # noqa: E402
from trainarena.store import Store  # noqa: E402
from trainarena.store.api_keys import create_key, revoke_key  # noqa: E402
from trainarena.store.models import ApiRole  # noqa: E402


@dataclass(frozen=True)
class Api:
    settings: Settings
    store: Store
    keys: dict[str, str]  # role (and "revoked") -> the key's secret
    finished: FinishedStore | None  # None: an empty store

    def client(self, services=()) -> TestClient:
        return TestClient(create_app(self.settings, store=self.store, services=services))

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


def make_keys(store: Store) -> dict[str, str]:
    with store.transaction() as session:
        keys = {role: create_key(session, f"{role}-key", role).secret for role in ApiRole.ALL}
        keys["revoked"] = create_key(session, "revoked-key", ApiRole.OPERATOR).secret
        revoke_key(session, "revoked-key")
    return keys
