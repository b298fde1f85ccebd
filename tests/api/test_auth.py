"""Every /v1 route and role: no key and a revoked key are 401, a role the route does not take is 403,
each with the one error shape; the roles a route takes get through. ``ROUTE_ROLES`` declares who may
call each route: a route added without an entry fails ``test_every_route_declares_its_roles``."""

from __future__ import annotations

import re

import pytest
from api_client import Api
from fastapi.testclient import TestClient

from trainarena.api import create_app
from trainarena.settings import Settings
from trainarena.store.models import ApiRole

PUBLIC = frozenset()  # no key needed
ANY_KEY = frozenset(ApiRole.ALL)
COMPETITORS = frozenset({ApiRole.OPERATOR, ApiRole.COMPETITOR})
OPERATORS = frozenset({ApiRole.OPERATOR})
CUSTOMERS = frozenset({ApiRole.OPERATOR, ApiRole.CUSTOMER})

ROUTE_ROLES: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/v1/health"): PUBLIC,
    ("GET", "/v1/me"): ANY_KEY,
    ("POST", "/v1/competitors"): COMPETITORS,
    ("GET", "/v1/competitors"): COMPETITORS,
    ("GET", "/v1/competitors/{name}"): COMPETITORS,
    # A competitor key retires those it registered (another's is a 403), an operator anyone's.
    ("DELETE", "/v1/competitors/{name}"): COMPETITORS,
    ("GET", "/v1/runs"): COMPETITORS,
    ("GET", "/v1/runs/{run_id}"): COMPETITORS,
    ("GET", "/v1/runs/{run_id}/logs"): COMPETITORS,
    ("GET", "/v1/tournaments"): COMPETITORS,
    ("GET", "/v1/tournaments/{tournament_id}"): COMPETITORS,
    ("GET", "/v1/tournaments/{tournament_id}/leaderboard"): COMPETITORS,
    ("POST", "/v1/tournaments"): OPERATORS,
    ("POST", "/v1/tournaments/{tournament_id}/start"): OPERATORS,
    ("POST", "/v1/tournaments/{tournament_id}/cancel"): OPERATORS,
    ("GET", "/v1/champions"): COMPETITORS,
    ("GET", "/v1/champions/{name}/code"): COMPETITORS,  # the champions' audience
    ("GET", "/v1/weights"): COMPETITORS,
    ("POST", "/v1/weights/publish"): OPERATORS,
    ("GET", "/v1/weights/export"): COMPETITORS,
    ("POST", "/v1/tasks/check"): OPERATORS,
    ("GET", "/v1/task-leaderboards/{task}"): COMPETITORS,
    ("GET", "/v1/pools"): OPERATORS,
    ("GET", "/v1/pools/drawable"): COMPETITORS,
    ("GET", "/v1/tasks"): OPERATORS,
    ("GET", "/v1/tasks/{name}"): OPERATORS,
    ("POST", "/v1/tasks"): OPERATORS,
    ("DELETE", "/v1/tasks/{name}"): OPERATORS,
    ("POST", "/v1/files"): CUSTOMERS,
    ("GET", "/v1/files"): CUSTOMERS,
    ("GET", "/v1/files/{file_id}"): CUSTOMERS,
    ("DELETE", "/v1/files/{file_id}"): CUSTOMERS,
    ("POST", "/v1/jobs"): CUSTOMERS,
    ("GET", "/v1/jobs"): CUSTOMERS,
    ("GET", "/v1/jobs/{job_id}"): CUSTOMERS,
    ("POST", "/v1/jobs/{job_id}/cancel"): CUSTOMERS,
    ("GET", "/v1/jobs/{job_id}/events"): CUSTOMERS,
    ("GET", "/v1/jobs/{job_id}/run"): CUSTOMERS,
    ("GET", "/v1/jobs/{job_id}/run/logs"): CUSTOMERS,
    # Every key sees models: a customer its own and the champions' (public), others the champions'.
    ("GET", "/v1/models"): ANY_KEY,
    ("GET", "/v1/models/{model_id}"): ANY_KEY,
    ("GET", "/v1/models/{model_id}/download"): ANY_KEY,
    ("POST", "/v1/models/{model_id}/publish"): OPERATORS,
    # A customer deletes its own models (another's is a 404), an operator anyone's.
    ("DELETE", "/v1/models/{model_id}"): CUSTOMERS,
    # Every key reads the signed records (a customer's job entries: only its own; operators all).
    ("GET", "/v1/records/public-key"): ANY_KEY,
    ("GET", "/v1/records/tree-head"): ANY_KEY,
    ("GET", "/v1/records/entries"): ANY_KEY,
    ("GET", "/v1/records/entries/{index}"): ANY_KEY,
    ("GET", "/v1/records/consistency"): ANY_KEY,
}


def api_routes() -> list[tuple[str, str]]:
    """(method, path) of every /v1 route, read from the app's OpenAPI schema (FastAPI keeps included
    routers unflattened in ``app.routes``; the schema lists every route it serves)."""
    schema = create_app(Settings()).openapi()
    return sorted((method.upper(), path) for path, operations in schema["paths"].items() if path.startswith("/v1/")
                  for method in operations)  # fmt: skip


ROUTES = api_routes()


def test_every_route_declares_its_roles() -> None:
    undeclared = sorted(set(ROUTES) - set(ROUTE_ROLES))
    assert not undeclared, f"add these routes to ROUTE_ROLES with the roles that may call them: {undeclared}"
    assert not set(ROUTE_ROLES) - set(ROUTES), "ROUTE_ROLES names routes the app no longer has"


def _call(client: TestClient, method: str, path: str, headers: dict[str, str]):
    # Every path parameter as "1" (an int and a name alike); a body that parses, so that only auth decides.
    url = re.sub(r"\{[^}]+\}", "1", path)
    return client.request(method, url, headers=headers, json={} if method in ("POST", "PUT", "PATCH") else None)


def _assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code and body["error"]["message"]


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_route_roles(empty_api: Api, method: str, path: str) -> None:
    with empty_api.client() as client:
        _check_roles(empty_api, client, method, path)


def _check_roles(api: Api, client: TestClient, method: str, path: str) -> None:
    allowed = ROUTE_ROLES[(method, path)]
    if not allowed:
        assert _call(client, method, path, {}).status_code == 200
        return
    missing = _call(client, method, path, {})
    _assert_error(missing, 401, "unauthenticated")
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    _assert_error(_call(client, method, path, api.auth("revoked")), 401, "unauthenticated")
    _assert_error(_call(client, method, path, {"Authorization": "Bearer ta_not-a-key"}), 401, "unauthenticated")
    for role in ApiRole.ALL:
        response = _call(client, method, path, api.auth(role))
        if role in allowed:
            assert response.status_code not in (401, 403), f"{role}: {response.text}"
        else:
            _assert_error(response, 403, "forbidden")
            assert response.json()["error"]["details"]["role"] == role
