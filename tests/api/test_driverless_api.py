"""The API on a tournament whose driver was killed outright: `GET /v1/runs` and `GET /v1/runs/{id}` give
its run still marked running `driver` with `alive` false (not training), every other run `driver`
null; `GET /v1/tournaments` and `GET /v1/tournaments/{id}` give the tournament that `driver`, every
other tournament null. The driver's host and pid are an operator's key's alone."""

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


def _get(client: TestClient, api: Api, path: str, role: str = "operator") -> dict:
    response = client.get(path, headers=api.auth(role))
    assert response.status_code == 200, response.text
    return response.json()


# Each resource's list, and the key of its items' ids.
LISTS = {"runs": ("/v1/runs?limit=100", "run_id"), "tournaments": ("/v1/tournaments", "id")}


@pytest.mark.parametrize("resource", ["runs", "tournaments"])
def test_a_running_run_or_tournament_nobody_drives_says_so(driverless: tuple[Api, DriverlessStore], resource: str) -> None:
    """Listed and shown, the run left running and its tournament name their driver, not alive; every
    other one's driver is null; once a live driver holds the lease, they name it, alive."""
    api, left = driverless
    path, key = LISTS[resource]
    own = left.run_id if resource == "runs" else left.tournament_id
    with api.client() as client:

        def listed() -> dict[int, dict | None]:
            return {item[key]: item["driver"] for item in _get(client, api, path)["data"]}

        others = listed()
        driver = others.pop(own)
        assert driver is not None and driver["alive"] is False and driver["host"] == socket.gethostname()
        assert isinstance(driver["pid"], int) and datetime.fromisoformat(driver["since"])
        assert others and all(other is None for other in others.values())  # finished ones
        shown = _get(client, api, f"/v1/{resource}/{own}")
        assert (shown["status"], shown["driver"]) == ("running", driver)
        other = left.done_id if resource == "runs" else next(iter(others))
        assert _get(client, api, f"/v1/{resource}/{other}")["driver"] is None
        assert driver == _get(client, api, f"/v1/runs/{left.run_id}")["driver"]  # a tournament's is its run's

        hand_lease_to(api.store, left.tournament_id, "elsewhere", 4242)  # a live driver on another host
        alive = {"alive": True, "host": "elsewhere", "pid": 4242, "since": None}
        assert _get(client, api, f"/v1/{resource}/{own}")["driver"] == alive and listed()[own] == alive
        # A competitor learns whether a driver plays it, not on which host nor as which process.
        hidden = {**alive, "host": None, "pid": None}
        assert _get(client, api, f"/v1/{resource}/{own}", "competitor")["driver"] == hidden
        assert {item[key]: item["driver"] for item in _get(client, api, path, "competitor")["data"]}[own] == hidden


def test_the_schema_documents_the_driver_field(driverless: tuple[Api, DriverlessStore]) -> None:
    api, _ = driverless
    with api.client() as client:
        schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for model in ("RunSummaryOut", "RunDetailOut", "TournamentSummaryOut", "TournamentDetailOut"):
        assert "not training" in schemas[model]["properties"]["driver"]["description"]
    assert set(schemas["DriverOut"]["properties"]) == {"alive", "host", "pid", "since"}
