"""Uploads and jobs are checked the same way whatever the format: numbers read as their text in JSONL
as in CSV; a field_mapping is never ignored unchecked; a job's mapping cannot name the file's split
or carry an unbounded system prompt."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from test_jobs import api_settings, job_body  # noqa: F401  (the fixture with a base model)
from test_jobs import upload as upload_id

from trainarena.settings import Settings

MAPPING = json.dumps({"field_instruction": "q", "field_output": "a"})


def _numbers_jsonl() -> bytes:
    return "".join(json.dumps({"q": f"What is {i} plus {i}?", "a": 2 * i}) + "\n" for i in range(30)).encode()


def _numbers_csv() -> bytes:
    return ("q,a\n" + "".join(f"What is {i} plus {i}?,{2 * i}\n" for i in range(30))).encode()


def test_numeric_answers_read_as_text_in_jsonl_as_in_csv(jobs_client: TestClient, auth: dict, api_settings: Settings) -> None:  # noqa: F811
    who = auth["customer"]
    for name, data in (("n.jsonl", _numbers_jsonl()), ("n.csv", _numbers_csv())):
        checked = jobs_client.post("/v1/files", headers=who, files={"file": (name, data)},
                                   data={"task_type": "instruct", "field_mapping": MAPPING})  # fmt: skip
        assert checked.status_code == 201, (name, checked.text)
        job = jobs_client.post("/v1/jobs", headers=who, json=job_body(api_settings, checked.json()["id"]))
        assert job.status_code == 201, (name, job.text)
    nested = "".join(json.dumps({"q": f"q{i}", "a": {"n": i}}) + "\n" for i in range(30)).encode()
    refused = jobs_client.post("/v1/files", headers=who, files={"file": ("x.jsonl", nested)},
                               data={"task_type": "instruct", "field_mapping": MAPPING})  # fmt: skip
    assert refused.status_code == 422 and "not text" in refused.json()["error"]["message"]


def test_a_mapping_without_task_type_is_refused_not_ignored(jobs_client: TestClient, auth: dict) -> None:
    sent = jobs_client.post("/v1/files", headers=auth["customer"], files={"file": ("n.jsonl", _numbers_jsonl())},
                            data={"field_mapping": json.dumps({"field_instruction": "nope", "field_output": "a"})})  # fmt: skip
    assert sent.status_code == 422, sent.text
    error = sent.json()["error"]
    assert error["details"]["field"] == "task_type" and "without task_type" in error["message"]


def test_a_jobs_mapping_names_no_split_and_a_bounded_prompt(jobs_client: TestClient, auth: dict, api_settings: Settings) -> None:  # noqa: F811
    who = auth["customer"]
    file_id = upload_id(jobs_client, who)
    mapping = {"field_instruction": "q", "field_output": "a"}
    split = jobs_client.post("/v1/jobs", headers=who, json=job_body(api_settings, file_id, field_mapping={**mapping, "split": "../../etc"}))
    assert split.status_code == 422 and "'split'" in split.json()["error"]["message"]
    unknown = jobs_client.post("/v1/jobs", headers=who, json=job_body(api_settings, file_id, field_mapping={**mapping, "splat": 1}))
    assert unknown.status_code == 422 and "field_instruction" in unknown.json()["error"]["message"]  # the known keys
    longest = api_settings.jobs.field_mapping_text_max_chars
    long = jobs_client.post("/v1/jobs", headers=who, json=job_body(api_settings, file_id, field_mapping={**mapping, "system_prompt": "x" * 100_000}))
    assert long.status_code == 422 and "field_mapping_text_max_chars" in long.json()["error"]["message"], long.text
    # a format string too: each row's text is built from it while the platform prepares the data
    long_format = jobs_client.post("/v1/jobs", headers=who, json=job_body(api_settings, file_id, field_mapping={
        **mapping, "format": "{instruction}" + " " * longest}))  # fmt: skip
    assert long_format.status_code == 422 and "field_mapping.format is" in long_format.json()["error"]["message"]
    repeated = jobs_client.post("/v1/jobs", headers=who, json=job_body(api_settings, file_id, field_mapping={
        **mapping, "format": "{instruction}" * 300}))  # fmt: skip
    assert repeated.status_code == 422 and "['instruction'] more than once" in repeated.json()["error"]["message"], repeated.text
    fits = jobs_client.post("/v1/jobs", headers=who, json=job_body(api_settings, file_id, field_mapping={**mapping, "system_prompt": "x" * longest}))
    assert fits.status_code == 201, fits.text


@pytest.mark.parametrize("spec", ["{instruction:>100000000}", "{instruction:{input}}", "{instruction:x^1000000000}"])
def test_a_jobs_format_takes_no_format_spec(jobs_client: TestClient, auth: dict, api_settings: Settings, spec: str) -> None:  # noqa: F811
    """A width in a placeholder bounded nothing: 24 characters made each row's prompt 100 MB (a nested
    placeholder in the spec was not counted either), where a repeated placeholder is refused for the same reason."""
    file_id = upload_id(jobs_client, auth["customer"])
    mapping = {"field_instruction": "q", "field_output": "a", "no_input_format": spec}
    sent = jobs_client.post("/v1/jobs", headers=auth["customer"], json=job_body(api_settings, file_id, field_mapping=mapping))
    assert sent.status_code == 422, sent.text
    assert "'no_input_format' gives {instruction} a format spec" in sent.json()["error"]["message"], sent.text
