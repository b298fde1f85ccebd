"""A route that takes no body (cancel, start, publish a model, delete...: every POST, PUT, PATCH or DELETE
the OpenAPI schema gives no requestBody) refuses one (422 saying it takes none), as unknown query
parameters and unknown body keys are refused: it was silently ignored, so a client sending
``{"reason": ...}`` to cancel, or options to start, never learnt they did nothing."""

from __future__ import annotations

import re

import pytest
from api_client import Api

from trainarena.api import create_app
from trainarena.settings import Settings

_SCHEMA = create_app(Settings()).openapi()
BODILESS = sorted(
    (method.upper(), path) for path, operations in _SCHEMA["paths"].items() for method, operation in operations.items()
    if method in ("post", "put", "patch", "delete") and "requestBody" not in operation
)  # fmt: skip


def test_the_schema_has_bodiless_routes_to_check() -> None:
    assert ("POST", "/v1/jobs/{job_id}/cancel") in BODILESS and ("POST", "/v1/models/{model_id}/publish") in BODILESS
    assert ("POST", "/v1/tournaments/{tournament_id}/start") in BODILESS


@pytest.mark.parametrize(("method", "path"), BODILESS, ids=[f"{m} {p}" for m, p in BODILESS])
def test_a_body_sent_to_a_route_that_takes_none_is_refused(empty_api: Api, method: str, path: str) -> None:
    url = re.sub(r"\{[^}]+\}", "987654", path)  # no such resource: answered 404 when the body is let through
    headers = empty_api.auth("operator")
    with empty_api.client() as client:
        refused = client.request(method, url, json={"reason": "not wanted"}, headers=headers)
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["code"] == "invalid_request"
        assert error["message"].startswith(f"{method} {path} takes no body; send none (it was sent ")
        form = client.request(method, url, content=b"reason=x", headers={**headers, "Content-Type": "application/x-www-form-urlencoded"})
        assert form.status_code == 422 and "takes no body" in form.json()["error"]["message"]
        # No body, or an empty JSON object (what many clients send with every POST), is no body: the route answers.
        for sent in ({}, {"json": {}}):
            answered = client.request(method, url, headers=headers, **sent)
            assert answered.status_code in (404, 503), answered.text  # 503: this test app drives no tournaments
