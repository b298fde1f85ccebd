"""schemathesis against the app's OpenAPI schema: requests generated from the schema (valid ones and
a few broken ones) with an operator's key, over a store holding a finished tournament; no answer may be
a server error, and every answer must conform to the schema (status, content type, body)."""

from __future__ import annotations

import pytest
import schemathesis
from api_client import Api
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from operator_data import FakeExecutor
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance

from trainarena.api import create_app
from trainarena.operations.drivers import BackgroundDrivers
from trainarena.settings import Settings

# Only the schema is read here (no store is opened): the requests go to the test's own app.
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi())
# 405s for methods a path does not take are tested in test_errors.py; here they would only cost time.
schema.config.phases.coverage.unexpected_methods = set()
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def offline_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """Generated task definitions name made-up hub ids: look them up in the local cache only."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def app(api: Api, offline_hub: None) -> FastAPI:
    return create_app(api.settings, store=api.store, services=(BackgroundDrivers(api.settings, FakeExecutor()),))


# derandomize: the same requests on every run, so CI cannot turn red on a draw no one has seen here.
@schema.parametrize()
@settings(max_examples=5, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_the_api_conforms_to_its_schema(case, app: FastAPI, api: Api) -> None:
    case.call_and_validate(app=app, headers=api.auth("operator"), checks=CHECKS)
