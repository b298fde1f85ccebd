"""The service itself: health without a key, the offline interactive docs, the schema's versioned
paths, and the per-key rate limiter's arithmetic."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from trainarena.api import create_app
from trainarena.api.auth import RateLimiter
from trainarena.settings import ApiRules, Settings
from trainarena.store import open_store


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path)
    with open_store(settings) as store, TestClient(create_app(settings, store=store)) as test_client:
        yield test_client


def test_health_needs_no_key(client: TestClient) -> None:
    answer = client.get("/v1/health")
    assert answer.status_code == 200 and answer.json()["status"] == "ok"


def test_docs_load_every_asset_from_the_service_itself(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert "/openapi.json" in html
        assets = [part.split('"')[0] for part in html.split('src="')[1:]] + [part.split('"')[0] for part in html.split('href="')[1:]]
        assert assets, page
        for asset in assets:
            assert asset.startswith("/"), f"{page} loads {asset} from elsewhere: the platform must work offline"
            assert client.get(asset).status_code == 200, asset


def test_every_documented_path_is_versioned(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["paths"] and all(path.startswith("/v1/") for path in schema["paths"])
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_unknown_path_and_wrong_method_answer_the_error_shape(client: TestClient) -> None:
    missing = client.get("/v1/no-such-thing")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = client.delete("/v1/health")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"


def test_rate_limiter_allows_a_burst_then_refills_evenly() -> None:
    now = [0.0]
    limiter = RateLimiter(ApiRules(rate_limit_per_minute=60, rate_limit_burst=3), clock=lambda: now[0])
    assert [limiter.take(1) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take(1) == pytest.approx(1.0)  # one request a second refills
    assert limiter.take(2) == 0.0  # another key has its own bucket
    now[0] = 0.5
    assert limiter.take(1) == pytest.approx(0.5)
    now[0] = 2.0
    assert limiter.take(1) == 0.0
