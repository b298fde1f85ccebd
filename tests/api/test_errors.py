"""The one error shape on 404, 405, 422 and 500, and the per-key rate limit (429 with Retry-After)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from api_client import Api
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from sqlite_lock import locked
from trainarena.api import create_app
from trainarena.store import database


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code and body["error"]["message"]
    return body["error"]


def test_unknown_paths_and_resources_are_404_with_the_error_shape(empty_api: Api) -> None:
    with empty_api.client() as client:
        _error(client.get("/v1/no-such-thing", headers=empty_api.auth("operator")), 404, "not_found")
        missing = _error(client.get("/v1/runs/42", headers=empty_api.auth("operator")), 404, "not_found")
    assert missing["message"] == "no run 42" and missing["details"] == {"run": "42"}


def test_a_method_a_path_does_not_take_is_405_with_the_error_shape(empty_api: Api) -> None:
    with empty_api.client() as client:
        _error(client.delete("/v1/health"), 405, "method_not_allowed")
        _error(client.put("/v1/tournaments", headers=empty_api.auth("operator")), 405, "method_not_allowed")


def test_a_fault_of_the_server_is_500_with_the_error_shape(empty_api: Api) -> None:
    """docs/api.md: every failure has one shape, whatever answers it; a bug's was Starlette's text/plain."""
    app = create_app(empty_api.settings, store=empty_api.store)

    @app.get("/v1/fails")
    def fails() -> None:
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as client:
        error = _error(client.get("/v1/fails"), 500, "internal_error")
    assert "a bug" not in error["message"]  # what failed inside is the operator's to read, in the log


def test_invalid_requests_are_422_naming_the_field(empty_api: Api) -> None:
    headers = empty_api.auth("operator")
    with empty_api.client() as client:
        bad_id = _error(client.get("/v1/runs/x", headers=headers), 422, "invalid_request")
        assert bad_id["details"]["problems"][0]["where"] == "path.run_id"
        too_many = _error(client.get("/v1/runs", params={"limit": 10_000}, headers=headers), 422, "invalid_request")
        assert too_many["details"] == {"limit": 10_000, "max": empty_api.settings.api.page_size_max}
        body = _error(client.post("/v1/tournaments", json={"kind": "video"}, headers=headers), 422, "invalid_request")
        assert {p["where"] for p in body["details"]["problems"]} == {"body.kind", "body.pool"}
        refused = _error(client.post("/v1/tournaments", json={"kind": "text", "pool": "nope"}, headers=headers), 422, "tournament_refused")
        assert "no task pool named 'nope'" in refused["message"]


def test_a_key_past_its_rate_limit_gets_429_with_retry_after(empty_api: Api) -> None:
    rules = empty_api.settings.api.model_copy(update={"rate_limit_burst": 2, "rate_limit_per_minute": 1})
    app = create_app(empty_api.settings.model_copy(update={"api": rules}), store=empty_api.store)
    with TestClient(app) as client:
        for _ in range(2):
            assert client.get("/v1/me", headers=empty_api.auth("competitor")).status_code == 200
        limited = client.get("/v1/competitors", headers=empty_api.auth("competitor"))
        error = _error(limited, 429, "rate_limited")
        assert 1 <= int(limited.headers["Retry-After"]) <= 60 and error["details"] == {"limit_per_minute": 1, "burst": 2}
        # It says what was exceeded: the burst, refilled at the rate (not "more than 1 requests a minute").
        assert error["message"] == ("this key used up its burst of 2 requests (api.rate_limit_burst), which refills at 1 a "
                                    f"minute (api.rate_limit_per_minute); retry in {limited.headers['Retry-After']} s")
        # Limits are per key: another key is not held back.
        assert client.get("/v1/me", headers=empty_api.auth("operator")).status_code == 200


def test_a_body_key_a_route_does_not_take_is_422_naming_it_and_the_keys_it_takes(empty_api: Api) -> None:
    """A customer's ``budget_seconds`` (a task file's key) or a misspelt ``validaton_share`` was ignored:
    the job got the default tier and was never scored."""
    with empty_api.client() as client:
        job = {"task_type": "instruct", "base_model": "trainarena:tiny_llama", "file_id": "file-x",
               "budget_seconds": 5, "validaton_share": 0.2}  # fmt: skip
        unknown = _error(client.post("/v1/jobs", json=job, headers=empty_api.auth("customer")), 422, "invalid_request")
        assert unknown["details"]["unknown"] == ["budget_seconds", "validaton_share"]
        assert unknown["message"].startswith("unknown fields budget_seconds, validaton_share; the body of POST /v1/jobs "
                                             "takes: base_model, budget_tier, field_mapping, file_id, seed, task_type, "
                                             "validation_share")  # fmt: skip
        task = {"name": "typo", "type": "instruct", "base_model": "m", "dataset": {}, "budgett": 3}
        typo = _error(client.post("/v1/tasks", json=task, headers=empty_api.auth("operator")), 422, "invalid_request")
        assert typo["details"]["unknown"] == ["budgett"] and "takes: allow_reused_data, base_model, budget_seconds, dataset" in typo["message"]
        # Every JSON body is as strict, and other problems are still named beside the unknown key.
        both = _error(client.post("/v1/tournaments", json={"kind": "text", "pol": "p"}, headers=empty_api.auth("operator")),
                      422, "invalid_request")  # fmt: skip
        assert both["details"]["unknown"] == ["pol"] and "body.pool: Field required" in both["message"]
        for path, body in (("/v1/competitors", {"name": "a", "repo": "r", "commit": "c", "hot_key": "x"}),
                           ("/v1/weights/publish", {"at": None, "when": "now"})):  # fmt: skip
            refused = client.post(path, json=body, headers=empty_api.auth("operator"))
            assert refused.status_code == 422 and refused.json()["error"]["details"].get("unknown"), (path, refused.text)


@pytest.mark.parametrize(
    ("role", "path", "body", "where"),
    [
        ("customer", "/v1/jobs", {"seed": True}, "body.seed"),
        ("customer", "/v1/jobs", {"seed": "3"}, "body.seed"),
        ("customer", "/v1/jobs", {"validation_share": "0.1"}, "body.validation_share"),
        ("customer", "/v1/jobs", {"validation_share": False}, "body.validation_share"),
        ("operator", "/v1/tasks/check", {"budget_seconds": "10"}, "body.budget_seconds"),
        ("operator", "/v1/tasks/check", {"seed": False}, "body.seed"),
        ("operator", "/v1/tasks", {"seed": True}, "body.seed"),
        ("operator", "/v1/tournaments", {"seed": "7"}, "body.seed"),
    ],
)
def test_a_boolean_or_a_string_is_not_a_number_in_a_body(empty_api: Api, role: str, path: str, body: dict, where: str) -> None:
    """As in a task file (`seed must be an integer, got True`): lax parsing took ``true`` as seed 1
    and ``"10"`` as a budget, and the job or task was made."""
    base = {"/v1/jobs": {"task_type": "instruct", "base_model": "trainarena:tiny_llama", "file_id": "file-x"},
            "/v1/tournaments": {"kind": "text", "pool": "p"}}.get(path, {"name": "t", "type": "instruct",
                                                                       "base_model": "trainarena:tiny_llama", "dataset": {}})  # fmt: skip
    with empty_api.client() as client:
        refused = _error(client.post(path, json={**base, **body}, headers=empty_api.auth(role)), 422, "invalid_request")
    assert [p["where"] for p in refused["details"]["problems"]] == [where]


def test_a_whole_number_is_a_number_where_a_fraction_is_taken(empty_api: Api) -> None:
    job = {"task_type": "instruct", "base_model": "trainarena:tiny_llama", "file_id": "file-x", "validation_share": 0}
    with empty_api.client() as client:
        passed = _error(client.post("/v1/jobs", json=job, headers=empty_api.auth("customer")), 422, "invalid_request")
    assert passed["details"] == {"field": "file_id"}  # the body was taken; only the file is missing


def test_a_body_not_sent_as_json_is_415_and_one_that_does_not_parse_says_where(empty_api: Api) -> None:
    """`curl -d` without a Content-Type sends a form: it was answered "Input should be a valid dictionary
    or object to extract fields from"; a body that did not parse was placed at "body.13"."""
    headers = empty_api.auth("customer")
    with empty_api.client() as client:
        for content_type in (None, "application/x-www-form-urlencoded"):
            sent = {**headers, **({"Content-Type": content_type} if content_type else {})}
            refused = _error(client.post("/v1/jobs", content=b'{"task_type": "instruct"}', headers=sent), 415, "unsupported_media_type")
            assert "send the body as JSON with `Content-Type: application/json`" in refused["message"]
        as_json = {**headers, "Content-Type": "application/json"}
        broken = _error(client.post("/v1/jobs", content=b'{"task_type":\n instruct}', headers=as_json), 422, "invalid_request")
        assert broken["message"] == "the body is not valid JSON: Expecting value at line 2, column 2"
        assert broken["details"]["problems"][0]["where"] == "body"
        listed = _error(client.post("/v1/jobs", content=b"[1]", headers=as_json), 422, "invalid_request")
        assert listed["message"] == "the body must be a JSON object"
        # A route without a JSON body takes a POST with no content type, as before.
        assert client.post("/v1/jobs/job-x/cancel", headers=headers).status_code == 404


def test_a_database_gone_mid_request_is_503_with_the_error_shape(empty_api: Api, monkeypatch, caplog) -> None:
    """Not a 500: the request may succeed once the database is back. Its URL goes to the log only."""
    url = make_url(empty_api.settings.db_url)
    if url.get_backend_name() != "sqlite":
        pytest.skip("the database is made unusable by locking its SQLite file")
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_S", 0.1)
    empty_api.store.engine.dispose()  # connections made from here on wait 0.1 s for a lock
    path = url.database
    with empty_api.client() as client, locked(Path(path)):
        created = client.post("/v1/competitors", json={"name": "x", "repo": "/nowhere", "commit": "0" * 40},
                              headers=empty_api.auth("operator"))
    gone = _error(created, 503, "unavailable")
    assert gone["message"] == "the database is unavailable now; try again later" and path not in gone["message"]
    assert f"the database sqlite:///{path} became unavailable: database is locked" in caplog.text


def test_a_database_file_replaced_under_the_server_is_503_saying_the_server_must_be_restarted(empty_api: Api, caplog) -> None:
    """No later request succeeds (the store refuses that path for good): "try again later" sent
    callers retrying for ever. The path goes to the log only, as a URL does."""
    url = make_url(empty_api.settings.db_url)
    if url.get_backend_name() != "sqlite":
        pytest.skip("the database file is replaced")
    path = Path(url.database)
    with empty_api.client() as client:
        assert client.get("/v1/tournaments", headers=empty_api.auth("operator")).status_code == 200
        shutil.copy(path, path.with_name("copy.db"))
        path.with_name("copy.db").replace(path)
        for _ in range(2):
            gone = _error(client.get("/v1/tournaments", headers=empty_api.auth("operator")), 503, "unavailable")
            assert gone["message"] == ("the database file was deleted or replaced while the server was running; "
                                       "the server must be restarted to use the file now at that path")
    assert f"the database file {path} was deleted or replaced while in use" in caplog.text


@pytest.mark.parametrize("budget", [1e300, 1e-300])
def test_a_task_body_with_a_budget_out_of_bounds_is_refused(empty_api: Api, budget: float) -> None:
    task = {"name": "b", "type": "instruct", "base_model": "trainarena:tiny_llama", "dataset": {"source": "d.jsonl"},
            "budget_seconds": budget}
    with empty_api.client() as client:
        for path in ("/v1/tasks/check", "/v1/tasks"):
            refused = _error(client.post(path, json=task, headers=empty_api.auth("operator")), 422, "task_refused")
            assert refused["message"].startswith("budget_seconds must be from 1 to 604800 seconds"), refused
