"""A refused job request says what to do: a seed out of range names the range, a body that is not
JSON says so, a deleted file is called deleted."""

from __future__ import annotations

from fastapi.testclient import TestClient
from test_jobs import api_settings, job_body, upload  # noqa: F401  (the fixture with a base model)

from trainarena.settings import Settings


def _refused(response, *words: str) -> str:  # noqa: ANN001
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert all(word in message for word in words), message
    return message


def test_seeds_are_0_to_the_store_maximum(jobs_client: TestClient, auth: dict, api_settings: Settings) -> None:  # noqa: F811
    who = auth["customer"]
    file_id = upload(jobs_client, who)
    message = _refused(jobs_client.post("/v1/jobs", headers=who, json=job_body(api_settings, file_id, seed=10**20)), "body.seed", "2147483647")
    assert "Unable to parse" not in message
    # A fraction is no seed, however large (as in a task file); bodies are strict (api/json_body.py).
    _refused(jobs_client.post("/v1/jobs", headers=who, json=job_body(api_settings, file_id, seed=1e30)), "body.seed", "a valid integer")
    _refused(jobs_client.post("/v1/jobs", headers=who, json=job_body(api_settings, file_id, seed=-1)), "body.seed")
    created = jobs_client.post("/v1/jobs", headers=who, json=job_body(api_settings, file_id, seed=2**31 - 1))
    assert created.status_code == 201 and created.json()["seed"] == 2**31 - 1


def test_a_body_that_is_not_json_is_named_so(jobs_client: TestClient, auth: dict) -> None:
    headers = {**auth["customer"], "Content-Type": "application/json"}
    message = _refused(jobs_client.post("/v1/jobs", headers=headers, content=b"task_type=instruct"), "is not valid JSON")
    assert "JSON decode error" not in message


def test_a_job_on_a_deleted_file_says_it_was_deleted(jobs_client: TestClient, auth: dict, api_settings: Settings) -> None:  # noqa: F811
    who = auth["customer"]
    file_id = upload(jobs_client, who)
    assert jobs_client.delete(f"/v1/files/{file_id}", headers=who).status_code == 200
    _refused(jobs_client.post("/v1/jobs", headers=who, json=job_body(api_settings, file_id)), "was deleted", file_id)
