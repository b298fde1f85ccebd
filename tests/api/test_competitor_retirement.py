"""DELETE /v1/competitors/{name} and POST /v1/competitors' ``replaces``: the key that registered a
competitor retires it, an operator any; another competitor key is refused with 403 (it reads the
competitor, so a 404 would deny what GET shows); the record stays, listed as retired."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from trainarena.api.routes import competitors
from trainarena.demo.example_repos import make_example_repo
from trainarena.demo.text import examples_root
from trainarena.store import Store
from trainarena.store.api_keys import create_key
from trainarena.store.models import ApiRole


@pytest.fixture
def register(jobs_client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # The repositories are folders here; a competitor key registers remote ones, which the tests cannot reach.
    monkeypatch.setattr(competitors, "is_remote_repo", lambda _repo: True)

    def post(name: str, example: str, headers: dict[str, str], **extra: str):
        repo, sha = make_example_repo(examples_root() / example, tmp_path / "repos" / name)
        return jobs_client.post("/v1/competitors", json={"name": name, "repo": str(repo), "commit": sha, **extra}, headers=headers)

    return post


def test_the_owner_or_an_operator_retires_and_another_competitor_key_is_refused(
    jobs_client: TestClient, auth: dict, api_store: Store, register
) -> None:
    with api_store.transaction() as session:
        rival = {"Authorization": f"Bearer {create_key(session, 'rival', ApiRole.COMPETITOR).secret}"}
    assert register("alice-v1", "baseline", auth["competitor"]).json()["retired_at"] is None
    assert register("ops", "lowrank", auth["operator"]).status_code == 201

    refused = jobs_client.delete("/v1/competitors/alice-v1", headers=rival)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden", refused.text
    assert jobs_client.delete("/v1/competitors/ops", headers=auth["competitor"]).status_code == 403  # nobody's key owns it
    assert jobs_client.delete("/v1/competitors/nobody", headers=auth["competitor"]).status_code == 404

    retired = jobs_client.delete("/v1/competitors/alice-v1", headers=auth["competitor"])
    assert retired.status_code == 200 and retired.json()["retired_by"] == "owner", retired.text
    again = jobs_client.delete("/v1/competitors/alice-v1", headers=auth["competitor"])
    assert again.json() == retired.json()  # retiring twice changes nothing
    assert jobs_client.delete("/v1/competitors/ops", headers=auth["operator"]).json()["retired_by"] == "operator"

    listed = {row["name"]: row["retired_at"] for row in jobs_client.get("/v1/competitors", headers=rival).json()["data"]}
    assert listed == {"alice-v1": retired.json()["retired_at"], "ops": listed["ops"]} and listed["ops"] is not None


def test_registering_with_replaces_retires_the_old_version_of_the_same_key_only(
    jobs_client: TestClient, auth: dict, api_store: Store, register
) -> None:
    with api_store.transaction() as session:
        rival = {"Authorization": f"Bearer {create_key(session, 'rival', ApiRole.COMPETITOR).secret}"}
    assert register("alice-v1", "baseline", auth["competitor"]).status_code == 201

    stolen = register("mallory", "lowrank", rival, replaces="alice-v1")
    assert stolen.status_code == 422 and "not registered with this key" in stolen.json()["error"]["message"], stolen.text
    assert jobs_client.get("/v1/competitors/mallory", headers=rival).status_code == 404  # neither happened
    assert jobs_client.get("/v1/competitors/alice-v1", headers=rival).json()["retired_at"] is None

    replaced = register("alice-v2", "lowrank", auth["competitor"], replaces="alice-v1")
    assert replaced.status_code == 201 and replaced.json()["retired_at"] is None, replaced.text
    old = jobs_client.get("/v1/competitors/alice-v1", headers=auth["competitor"]).json()
    assert old["retired_by"] == "owner" and old["retired_at"] is not None
