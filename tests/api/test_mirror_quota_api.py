"""POST /v1/competitors under registration.mirror_quota_bytes: a competitor key whose mirrors would pass
it is refused with 409 quota_exceeded naming its usage and the limit, and GET /v1/me shows the usage;
an operator's key is not limited."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from submission_repos import git

from trainarena.api.routes import competitors
from trainarena.demo.example_repos import make_example_repo
from trainarena.demo.text import examples_root
from trainarena.settings import Settings

LIMIT = 1_000_000


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", registration={"mirror_quota_bytes": LIMIT})


def quota(client: TestClient, headers: dict[str, str]) -> dict:
    (only,) = client.get("/v1/me", headers=headers).json()["quotas"]
    return only


def test_a_competitor_key_past_its_mirror_quota_is_refused(jobs_client: TestClient, auth: dict, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    # The repositories are folders here; a competitor key registers remote ones, which the tests cannot reach.
    monkeypatch.setattr(competitors, "is_remote_repo", lambda _repo: True)
    small, small_sha = make_example_repo(examples_root() / "lowrank", tmp_path / "repos" / "small")
    bulky, bulky_sha = make_example_repo(examples_root() / "baseline", tmp_path / "repos" / "bulky")
    (bulky / "history.bin").write_bytes(os.urandom(2 * LIMIT))  # in the mirror's history, not in the registered tree
    assert quota(jobs_client, auth["competitor"]) == {"setting": "registration.mirror_quota_bytes", "used": 0, "limit": LIMIT}
    added = jobs_client.post("/v1/competitors", json={"name": "small", "repo": str(small), "commit": small_sha},
                             headers=auth["competitor"])  # fmt: skip
    assert added.status_code == 201, added.text
    used = quota(jobs_client, auth["competitor"])["used"]
    assert used > 0
    git(bulky, "add", "--all")
    git(bulky, "commit", "--quiet", "-m", "history")
    refused = jobs_client.post("/v1/competitors", json={"name": "bulky", "repo": str(bulky), "commit": bulky_sha},
                               headers=auth["competitor"])  # fmt: skip
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "quota_exceeded" and error["details"]["setting"] == "registration.mirror_quota_bytes"
    assert (error["details"]["used_bytes"], error["details"]["limit_bytes"]) == (used, LIMIT)
    assert f"{used:,} bytes" in error["message"] and f"{LIMIT:,} bytes" in error["message"]
    assert quota(jobs_client, auth["competitor"])["used"] == used
    operator = jobs_client.post("/v1/competitors", json={"name": "bulky", "repo": str(bulky), "commit": bulky_sha},
                                headers=auth["operator"])  # fmt: skip
    assert operator.status_code == 201, operator.text
    assert jobs_client.get("/v1/me", headers=auth["operator"]).json()["quotas"] is None
