"""JSON bodies: the key is checked before a byte of the body is read (FastAPI read and parsed a body of
any size before the key dependency ran, so a client without a key could fill the server's memory), a
body over api.json_body_max_bytes is 413 (from Content-Length at once, while streaming for a chunked
one), and a body that is not UTF-8 or is nested too deeply is the documented 422, not FastAPI's 400
"There was an error parsing the body"."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from api_client import Api
from fastapi import FastAPI
from fastapi.testclient import TestClient

from trainarena.api import create_app

LIMIT = 4096
CHUNK = 1024


def _app(api: Api) -> FastAPI:
    settings = api.settings.model_copy(update={"api": api.settings.api.model_copy(update={"json_body_max_bytes": LIMIT})})
    return create_app(settings, store=api.store)


def _call(app: FastAPI, path: str, headers: dict[str, str], chunks: int, declared: int | None = None) -> tuple[int, dict, int]:
    """POST ``chunks`` chunks of a body straight to the ASGI app: (status, JSON answer, chunks it read)."""
    read = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        if read >= chunks:
            await asyncio.sleep(0)
            return {"type": "http.disconnect"}
        read += 1
        return {"type": "http.request", "body": b" " * CHUNK, "more_body": read < chunks}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    framing = {"content-length": str(declared)} if declared is not None else {"transfer-encoding": "chunked"}
    raw = [(k.lower().encode(), v.encode()) for k, v in {**headers, **framing, "content-type": "application/json"}.items()]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"", "headers": raw,
             "client": ("127.0.0.1", 1), "server": ("testserver", 80), "state": {}}  # fmt: skip
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body), read


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/tasks", "/v1/competitors", "/v1/tournaments"])
def test_a_body_without_a_good_key_is_401_unread(empty_api: Api, path: str) -> None:
    app = _app(empty_api)
    for headers in ({}, {"authorization": "Bearer ta_nonsense"}, empty_api.auth("revoked")):
        for declared in (None, 3 * CHUNK):
            status, answer, read = _call(app, path, headers, chunks=3, declared=declared)
            assert (status, answer["error"]["code"], read) == (401, "unauthenticated", 0), (headers, declared, answer)


def test_a_body_over_the_bound_is_413_unread_when_declared_and_cut_off_when_streamed(empty_api: Api) -> None:
    app = _app(empty_api)
    operator = {k.lower(): v for k, v in empty_api.auth("operator").items()}
    status, answer, read = _call(app, "/v1/tasks", operator, chunks=100, declared=100 * CHUNK)
    assert (status, answer["error"]["code"], read) == (413, "too_large", 0)
    assert answer["error"]["details"] == {"limit_bytes": LIMIT} and "api.json_body_max_bytes" in answer["error"]["message"]
    status, answer, read = _call(app, "/v1/tasks", operator, chunks=100)
    assert (status, answer["error"]["code"], answer["error"]["details"]) == (413, "too_large", {"limit_bytes": LIMIT})
    assert read == LIMIT // CHUNK + 1  # refused at the chunk that passed the bound, not after the whole body
    # Within the bound the body is read and parsed as ever (here: not JSON, so a 422 with where it stopped).
    status, answer, read = _call(app, "/v1/tasks", operator, chunks=2)
    assert status == 422 and "the body is not valid JSON" in answer["error"]["message"] and read == 2


def test_a_body_is_counted_against_the_rate_limit_once(empty_api: Api) -> None:
    app = _app(empty_api)
    taken: list[int] = []
    real = app.state.rate_limiter.take
    app.state.rate_limiter.take = lambda key_id: taken.append(key_id) or real(key_id)
    with TestClient(app) as client:
        answer = client.post("/v1/jobs", json={}, headers=empty_api.auth("customer"))
        assert answer.status_code == 422 and len(taken) == 1
        assert client.get("/v1/me", headers=empty_api.auth("customer")).status_code == 200 and len(taken) == 2


def test_a_body_that_is_not_utf8_or_nested_too_deeply_is_the_documented_422(empty_api: Api) -> None:
    headers = {**empty_api.auth("operator"), "Content-Type": "application/json"}
    with empty_api.client() as client:
        latin = client.post("/v1/tasks", content='{"name":"é"}'.encode("latin-1"), headers=headers)
        assert latin.status_code == 422, latin.text
        error = latin.json()["error"]
        assert error["code"] == "invalid_request" and "not UTF-8 at byte 9" in error["message"], error
        deep = client.post("/v1/jobs", content=b"[" * 5000 + b"]" * 5000, headers={**headers, **empty_api.auth("customer")})
        assert deep.status_code == 422, deep.text
        assert deep.json()["error"]["code"] == "invalid_request" and "nested too deeply" in deep.json()["error"]["message"]
