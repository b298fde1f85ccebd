"""The API on a tournament whose driver was killed outright: `GET /v1/runs` and `GET /v1/runs/{id}` give
its run still marked running `driver` with `alive` false (not training), every other run `driver`
null; `GET /v1/tournaments` and `GET /v1/tournaments/{id}` give the tournament that `driver`, every
other tournament null."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from api_client import Api, make_keys
from driverless_store import DriverlessStore, build_driverless_store, hand_lease_to
from fastapi.testclient import TestClient

from trainarena.settings import Settings
from trainarena.store import open_store


@pytest.fixture
def driverless(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Api, DriverlessStore]]:
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(tmp_path / "data"))
    left = build_driverless_store(tmp_path / "data")
    settings = Settings()
    with open_store(settings) as store:
        yield Api(settings, store, make_keys(store), None), left


def _get(client: TestClient, api: Api, path: str) -> dict:
    response = client.get(path, headers=api.auth("competitor"))
    assert response.status_code == 200, response.text
    return response.json()


def test_a_running_run_nobody_drives_says_so(driverless: tuple[Api, DriverlessStore]) -> None:
    api, left = driverless
    with api.client() as client:
        runs = {run["run_id"]: run for run in _get(client, api, "/v1/runs?limit=100")["data"]}
        driver = runs.pop(left.run_id)["driver"]
        assert driver["alive"] is False and driver["host"] == socket.gethostname() and isinstance(driver["pid"], int)
        assert datetime.fromisoformat(driver["since"])
        assert all(run["driver"] is None for run in runs.values())
        shown = _get(client, api, f"/v1/runs/{left.run_id}")
        assert (shown["status"], shown["driver"]) == ("running", driver)
        assert _get(client, api, f"/v1/runs/{left.done_id}")["driver"] is None

        hand_lease_to(api.store, left.tournament_id, "elsewhere", 4242)  # a live driver on another host
        assert _get(client, api, f"/v1/runs/{left.run_id}")["driver"] == {"alive": True, "host": "elsewhere", "pid": 4242, "since": None}


def test_a_running_tournament_nobody_drives_says_so(driverless: tuple[Api, DriverlessStore]) -> None:
    api, left = driverless
    with api.client() as client:
        listed = {t["id"]: t for t in _get(client, api, "/v1/tournaments")["data"]}
        driver = listed.pop(left.tournament_id)["driver"]
        assert driver["alive"] is False and driver["host"] == socket.gethostname() and isinstance(driver["pid"], int)
        assert [t["driver"] for t in listed.values()] == [None]  # the finished one
        shown = _get(client, api, f"/v1/tournaments/{left.tournament_id}")
        assert (shown["status"], shown["driver"]) == ("running", driver)
        assert driver == _get(client, api, f"/v1/runs/{left.run_id}")["driver"]  # its run's, as the run says it
        assert _get(client, api, f"/v1/tournaments/{next(iter(listed))}")["driver"] is None

        hand_lease_to(api.store, left.tournament_id, "elsewhere", 4242)  # a live driver on another host
        alive = {"alive": True, "host": "elsewhere", "pid": 4242, "since": None}
        assert _get(client, api, f"/v1/tournaments/{left.tournament_id}")["driver"] == alive
        assert {t["id"]: t["driver"] for t in _get(client, api, "/v1/tournaments")["data"]}[left.tournament_id] == alive


def test_the_schema_documents_the_driver_field(driverless: tuple[Api, DriverlessStore]) -> None:
    api, _ = driverless
    with api.client() as client:
        schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for model in ("RunSummaryOut", "RunDetailOut", "TournamentSummaryOut", "TournamentDetailOut"):
        assert "not training" in schemas[model]["properties"]["driver"]["description"]
    assert set(schemas["DriverOut"]["properties"]) == {"alive", "host", "pid", "since"}
