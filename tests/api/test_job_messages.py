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


def test_a_mappings_unknown_key_offers_only_keys_a_job_may_give(jobs_client: TestClient, auth: dict, api_settings: Settings) -> None:  # noqa: F811
    """The allowed list offered 'source' and 'split', which a job's mapping may not give (QA 16)."""
    who = auth["customer"]
    file_id = upload(jobs_client, who)
    mapping = {"field_instruction": "q", "field_output": "a", "bogus": 1}
    message = _refused(jobs_client.post("/v1/jobs", headers=who, json=job_body(api_settings, file_id, field_mapping=mapping)),
                       "unknown key(s) ['bogus']", "'system_prompt'")  # fmt: skip
    assert "'source'" not in message and "'split'" not in message


def test_a_text_key_of_a_mapping_takes_a_string_only(jobs_client: TestClient, auth: dict, api_settings: Settings) -> None:  # noqa: F811
    """A number or null was taken as system_prompt and read as text downstream (QA 16); a key that may be
    left out (field_input) still takes null."""
    who = auth["customer"]
    file_id = upload(jobs_client, who)
    for key, value in (("system_prompt", 5), ("system_prompt", None), ("format", 1.5), ("response_separator", ["x"])):
        mapping = {"field_instruction": "q", "field_output": "a", key: value}
        _refused(jobs_client.post("/v1/jobs", headers=who, json=job_body(api_settings, file_id, field_mapping=mapping)),
                 f"'{key}' must be a string, got {value!r}")  # fmt: skip
    mapping = {"field_instruction": "q", "field_output": "a", "field_input": None, "system_prompt": "Be brief."}
    assert jobs_client.post("/v1/jobs", headers=who, json=job_body(api_settings, file_id, field_mapping=mapping)).status_code == 201


def test_an_image_job_on_a_text_file_reads_as_english(jobs_client: TestClient, auth: dict, api_settings: Settings) -> None:  # noqa: F811
    """It said "a image job needs a image one" (QA 17)."""
    who = auth["customer"]
    file_id = upload(jobs_client, who)
    body = job_body(api_settings, file_id, task_type="image", base_model="trainarena:tiny_sd", field_mapping={})
    _refused(jobs_client.post("/v1/jobs", headers=who, json=body), f"file {file_id} is a text dataset; an image job needs an image one")
