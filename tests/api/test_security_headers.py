"""Browser hardening headers on every kind of response the service sends: a dashboard page, its
not-found page, a static asset, the API's JSON (an answer and an error), a job's event stream and the
offline API docs. No response may be framed; a page may run only the service's own script."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from trainarena.settings import Settings

ROWS = "".join(json.dumps({"q": f"What is {i} plus {i}?", "a": str(2 * i)}) + "\n" for i in range(30)).encode()


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    model = tmp_path / "model"
    model.mkdir()
    return Settings(data_dir=tmp_path / "data", jobs={"base_models": (str(model),)})


def directives(response: httpx.Response) -> dict[str, str]:
    """The response's hardening headers checked, and its Content-Security-Policy by directive."""
    assert response.headers["x-frame-options"] == "DENY", response.headers
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    policy = dict(part.strip().partition(" ")[::2] for part in response.headers["content-security-policy"].split(";"))
    assert policy["frame-ancestors"] == "'none'", policy
    return policy


def test_pages_and_their_errors_and_assets_may_not_be_framed(jobs_client: TestClient) -> None:
    page = jobs_client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = directives(page)
    assert policy["script-src"] == "'self'" and policy["default-src"] == "'self'", policy  # no inline script on a page
    missing = jobs_client.get("/no-such-page", headers={"Accept": "text/html"})
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert directives(missing) == policy
    for asset in ("/static/dashboard.css", "/static/live.js"):
        served = jobs_client.get(asset)
        assert served.status_code == 200
        assert directives(served)["default-src"] == "'none'"
    head = jobs_client.head("/")
    assert head.status_code == 200 and directives(head) == policy


def test_api_answers_and_streams_may_not_be_framed(jobs_client: TestClient, auth: dict, api_settings: Settings) -> None:
    health = jobs_client.get("/v1/health")
    assert health.status_code == 200 and directives(health)["default-src"] == "'none'"
    refused = jobs_client.get("/v1/me")
    assert refused.status_code == 401 and directives(refused)["default-src"] == "'none'"
    too_large = jobs_client.post("/v1/jobs", headers={**auth["customer"], "Content-Type": "application/json"},
                                 content=b"[" * (api_settings.api.json_body_max_bytes + 1))  # fmt: skip
    assert too_large.status_code == 413 and directives(too_large)["default-src"] == "'none'"  # answered by a middleware
    uploaded = jobs_client.post("/v1/files", headers=auth["customer"], files={"file": ("qa.jsonl", ROWS)})
    body = {"task_type": "instruct", "base_model": api_settings.jobs.base_models[0], "file_id": uploaded.json()["id"],
            "field_mapping": {"field_instruction": "q", "field_output": "a"}}  # fmt: skip
    job = jobs_client.post("/v1/jobs", headers=auth["customer"], json=body).json()
    assert jobs_client.post(f"/v1/jobs/{job['id']}/cancel", headers=auth["customer"]).status_code == 200
    with jobs_client.stream("GET", f"/v1/jobs/{job['id']}/events", headers=auth["customer"]) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert directives(stream)["default-src"] == "'none'"
        stream.read()


def test_the_api_docs_run_their_own_inline_start_script_and_no_other_pages_do(jobs_client: TestClient) -> None:
    for path in ("/docs", "/redoc"):
        policy = directives(jobs_client.get(path))
        assert "'unsafe-inline'" in policy["script-src"], policy
