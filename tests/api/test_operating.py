"""An operator's and a competitor's path through the API with a fake executor (no training): register
competitors, store tasks in a pool (refusals are 422 naming the problem), create a pool tournament,
drive it in the background (a second start is 409), publish the weights, remove tasks."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from api_client import Api
from fastapi.testclient import TestClient
from operator_data import FakeExecutor, OperatorData, write_operator_data

from trainarena.demo.example_repos import make_example_repo
from trainarena.demo.text import examples_root
from trainarena.operations.drivers import BackgroundDrivers
from trainarena.runs import RunReport, RunRequest
from trainarena.store import get_stored_task
from trainarena.store.leases import DriverIdentity, try_acquire
from trainarena.tasks.text import hub_rows


class GatedExecutor(FakeExecutor):
    """Plays each run once ``gate`` is open, so a test can look at a tournament while it is driven."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def execute(self, request: RunRequest) -> RunReport:
        assert self.gate.wait(30), "the test never opened the gate"
        return super().execute(request)


def _task(data: OperatorData, name: str, **changes) -> dict:
    return {"name": name, "type": "instruct", "base_model": str(data.model), "budget_seconds": 5, "pool": "weekly",
            "dataset": {"source": str(data.jsonl), "field_instruction": "q", "field_output": "a"}, **changes}  # fmt: skip


def _register(client: TestClient, api: Api, name: str, commit: str | None = None, example: str | None = None, role: str = "operator"):
    repo = api.settings.data_dir / "repos" / (example or name)
    if not repo.exists():
        make_example_repo(examples_root() / (example or name), repo)
    head = (repo / ".git" / "refs" / "heads" / "main").read_text().strip()
    return client.post("/v1/competitors", json={"name": name, "repo": str(repo), "commit": commit or head},
                       headers=api.auth(role))  # fmt: skip


def _pool_tournament(client: TestClient, api: Api, tmp_path: Path) -> dict:
    """The smallest operator set-up: baseline and instruct_only registered, task t1 stored in pool weekly, a tournament created on it."""
    data = write_operator_data(tmp_path)
    for name in ("baseline", "instruct_only"):
        assert _register(client, api, name).status_code == 201
    assert client.post("/v1/tasks", json=_task(data, "t1"), headers=api.auth("operator")).status_code == 201
    created = client.post("/v1/tournaments", json={"kind": "text", "pool": "weekly"}, headers=api.auth("operator"))
    assert created.status_code == 201, created.text
    return created.json()


def _wait_until_finished(client: TestClient, api: Api, tournament_id: int) -> dict:
    deadline = time.monotonic() + 60
    while (detail := client.get(f"/v1/tournaments/{tournament_id}", headers=api.auth("competitor")).json())["status"] != "finished":
        assert time.monotonic() < deadline, f"tournament {tournament_id} did not finish: {detail['status']}"
        time.sleep(0.05)
    return detail


def test_operators_store_tasks_create_and_drive_a_tournament_and_publish(empty_api: Api, tmp_path: Path) -> None:
    data = write_operator_data(tmp_path)
    executor = GatedExecutor()
    drivers = BackgroundDrivers(empty_api.settings, executor)
    operator = empty_api.auth("operator")
    with empty_api.client(services=(drivers,)) as client:
        for name in ("baseline", "instruct_only", "torchloop"):
            registered = _register(client, empty_api, name)
            assert registered.status_code == 201, registered.text
            assert registered.json()["name"] == name and registered.json()["copies"] == []
        local = _register(client, empty_api, "mine", example="baseline", role="competitor")
        assert local.status_code == 422 and "take an operator's key" in local.json()["error"]["message"]
        taken = _register(client, empty_api, "baseline")
        assert taken.status_code == 422 and "already registered" in taken.json()["error"]["message"]
        branch = _register(client, empty_api, "torchloop2", commit="main", example="torchloop")
        assert branch.status_code == 422 and "40-character" in branch.json()["error"]["message"]

        for name in ("t1", "t2", "t3"):  # one dataset for the three: no hidden split is kept secret here
            added = client.post("/v1/tasks", json=_task(data, name, allow_reused_data=name != "t1"), headers=operator)
            assert added.status_code == 201, added.text
        stored = added.json()
        assert stored["pool"] == "weekly" and stored["train_rows"] + stored["hidden_rows"] == 40 and len(stored["digests"]["hidden_split"]) == 64
        for budget in ("Infinity", "1e400", "NaN"):  # JSON parsers read all three; each would give a run no deadline
            body = json.dumps(_task(data, "forever")).replace('"budget_seconds": 5', f'"budget_seconds": {budget}')
            endless = client.post("/v1/tasks", content=body, headers={**operator, "Content-Type": "application/json"})
            assert endless.status_code == 422 and "budget_seconds" in endless.text, (budget, endless.text)
        wrong_column = client.post("/v1/tasks", json=_task(data, "t9", dataset={"source": str(data.jsonl), "field_instruction": "question",
                                                                               "field_output": "a"}), headers=operator)  # fmt: skip
        assert wrong_column.status_code == 422 and "question" in wrong_column.json()["error"]["message"]
        assert client.post("/v1/tasks", json=_task(data, "t1"), headers=operator).json()["error"]["code"] == "task_refused"
        assert [t["name"] for t in client.get("/v1/tasks", params={"pool": "weekly"}, headers=operator).json()["data"]] == ["t1", "t2", "t3"]
        stored = client.get("/v1/tasks/t2", headers=operator).json()
        assert stored["dataset"] == str(data.jsonl) and stored["direction"] == "lower"
        assert client.get("/v1/pools", headers=operator).json()[0] | {"created_at": None} == {
            "name": "weekly", "kind": "text", "tasks": ["t1", "t2", "t3"], "created_at": None}

        created = client.post("/v1/tournaments", json={"kind": "text", "pool": "weekly", "seed": 5}, headers=operator)
        assert created.status_code == 201, created.text
        tournament = created.json()
        assert tournament["entrants"] == ["baseline", "instruct_only", "torchloop"] and sorted(tournament["tasks"]) == ["t2", "t3"]

        started = client.post(f"/v1/tournaments/{tournament['id']}/start", headers=operator)
        assert started.status_code == 202 and started.json() == {"id": tournament["id"], "name": tournament["name"], "driving": True}
        again = client.post(f"/v1/tournaments/{tournament['id']}/start", headers=operator)
        assert again.status_code == 409 and "already being driven by this process" in again.json()["error"]["message"]
        executor.gate.set()
        detail = _wait_until_finished(client, empty_api, tournament["id"])
        assert detail["champion"] in tournament["entrants"] and detail["pool"] == "weekly" and detail["weights"]
        assert len(executor.requests) == len(detail["runs"])
        finished = client.post(f"/v1/tournaments/{tournament['id']}/start", headers=operator)
        assert finished.status_code == 409 and "is finished" in finished.json()["error"]["message"]

        future = client.post("/v1/weights/publish", json={"at": "9999-12-31T23:59:59Z"}, headers=operator)
        assert future.status_code == 422 and future.json()["error"]["details"] == {"field": "at"}
        assert "later than now" in future.json()["error"]["message"]
        published = client.post("/v1/weights/publish", json={}, headers=operator).json()
        assert published["new"] is True and published["tournaments"]["text"]["id"] == tournament["id"]
        assert client.post("/v1/weights/publish", json={}, headers=operator).json()["new"] is False
        assert client.get("/v1/weights", headers=empty_api.auth("competitor")).json()["latest"]["id"] == published["id"]
        competitor = empty_api.auth("competitor")
        as_json = client.get("/v1/weights/export", headers=competitor).json()
        assert as_json["id"] == published["id"] and as_json["weights"]
        as_csv = client.get("/v1/weights/export", params={"format": "csv"}, headers=competitor)
        assert as_csv.headers["content-type"].startswith("text/csv") and as_csv.text.splitlines()[0] == "competitor,hotkey,weight"
        u16 = client.get("/v1/weights/export", params={"format": "u16"}, headers=competitor).json()
        assert u16["warnings"] and all("hotkey" in warning for warning in u16["warnings"])  # no competitor gave a hotkey
        assert client.get("/v1/weights/export", params={"vector": 999}, headers=competitor).status_code == 404

        drawn = client.delete(f"/v1/tasks/{tournament['tasks'][0]}", headers=operator)
        assert drawn.status_code == 409 and "was drawn by tournament" in drawn.json()["error"]["message"]
        assert client.delete("/v1/tasks/t1", headers=operator).json() == {"removed": "t1"}
        assert client.get("/v1/tasks/t1", headers=operator).status_code == 404


def test_a_tournament_another_process_drives_is_not_started_again(empty_api: Api, tmp_path: Path) -> None:
    drivers = BackgroundDrivers(empty_api.settings, FakeExecutor())
    operator = empty_api.auth("operator")
    with empty_api.client(services=(drivers,)) as client:
        tournament = _pool_tournament(client, empty_api, tmp_path)
        with empty_api.store.transaction() as session:  # another live driver (pid 1 on this host) holds it
            assert try_acquire(session, tournament["id"], DriverIdentity("other", socket.gethostname(), 1), empty_api.settings.lease) is None
        refused = client.post(f"/v1/tournaments/{tournament['id']}/start", headers=operator)
        assert refused.status_code == 409 and "pid 1" in refused.json()["error"]["message"]
        assert not drivers.driving(tournament["id"])
        assert client.post("/v1/tournaments/999/start", headers=operator).status_code == 404
    unavailable = BackgroundDrivers(empty_api.settings, None, unavailable="no sandbox here: install bubblewrap")
    with empty_api.client(services=(unavailable,)) as client:
        refused = client.post(f"/v1/tournaments/{tournament['id']}/start", headers=operator)
        assert refused.status_code == 503 and refused.json()["error"]["message"] == "no sandbox here: install bubblewrap"


def test_a_misspelt_dataset_sent_to_the_api_names_the_path_on_the_server(empty_api: Api, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A body has no task file: its relative names are read against the data dir, which the refusal names."""
    data = write_operator_data(tmp_path)
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", *hub_rows.PROXY_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hub_rows, "hub_reachable", lambda: False)  # no test reaches the network
    task = _task(data, "typo", dataset={"source": "rowz/train", "field_instruction": "q", "field_output": "a"})
    with empty_api.client() as client:
        for route in ("/v1/tasks", "/v1/tasks/check"):
            refused = client.post(route, json=task, headers=empty_api.auth("operator"))
            assert refused.status_code == 422, refused.text
            message = refused.json()["error"]["message"]
            assert message.startswith(f"rowz/train: no file or folder {empty_api.settings.data_dir / 'rowz/train'}, and the "
                                      "Hugging Face dataset 'rowz/train' could not be loaded: the Hub cannot be reached"), message


def test_a_tournament_drawing_a_task_stored_with_no_finite_budget_is_not_started(empty_api: Api, tmp_path: Path) -> None:
    executor = FakeExecutor()
    drivers = BackgroundDrivers(empty_api.settings, executor)
    operator = empty_api.auth("operator")
    with empty_api.client(services=(drivers,)) as client:
        tournament = _pool_tournament(client, empty_api, tmp_path)
        with empty_api.store.transaction() as session:  # as builds before the budget check could store it
            stored = get_stored_task(session, "t1")
            stored.definition = {**stored.definition, "budget_seconds": "inf"}
        refused = client.post(f"/v1/tournaments/{tournament['id']}/start", headers=operator)
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["message"].startswith(
            f"tournament {tournament['name']!r}: stored task 't1': budget_seconds must be a positive number, got 'inf'; "
            "add the task again with a finite budget")
        assert not drivers.driving(tournament["id"]) and executor.requests == []
        assert client.get("/v1/tasks/t1", headers=operator).status_code == 200  # still shown, as `task show` does


class BrokenExecutor(FakeExecutor):
    def execute(self, request: RunRequest) -> RunReport:
        raise RuntimeError("the sandbox backend is gone")


def test_a_background_drive_the_platform_breaks_is_logged_and_a_later_start_resumes_it(
    empty_api: Api, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    operator = empty_api.auth("operator")
    broken = BackgroundDrivers(empty_api.settings, BrokenExecutor())
    with empty_api.client(services=(broken,)) as client:
        tournament = _pool_tournament(client, empty_api, tmp_path)
        assert client.post(f"/v1/tournaments/{tournament['id']}/start", headers=operator).status_code == 202
        deadline = time.monotonic() + 30
        while broken.driving(tournament["id"]):
            assert time.monotonic() < deadline, "the broken drive did not end"
            time.sleep(0.05)
        assert client.get(f"/v1/tournaments/{tournament['id']}", headers=operator).json()["status"] != "finished"
    assert "RuntimeError: the sandbox backend is gone" in caplog.text and f"driving tournament {tournament['id']} failed" in caplog.text

    with empty_api.client(services=(BackgroundDrivers(empty_api.settings, FakeExecutor()),)) as client:
        assert client.post(f"/v1/tournaments/{tournament['id']}/start", headers=operator).status_code == 202
        detail = _wait_until_finished(client, empty_api, tournament["id"])
    assert detail["champion"] in ("baseline", "instruct_only")


def test_operators_check_a_task_without_storing_it(empty_api: Api, tmp_path: Path) -> None:
    data = write_operator_data(tmp_path)
    operator = empty_api.auth("operator")
    with empty_api.client() as client:
        checked = client.post("/v1/tasks/check", json=_task(data, "t1"), headers=operator)
        assert checked.status_code == 200, checked.text
        report = checked.json()
        assert report["ok"] and report["leak_check"]["passed"] and report["train_rows"] + report["hidden_rows"] == report["rows"]
        wrong = client.post("/v1/tasks/check", json=_task(data, "t2", dataset={"source": str(data.jsonl), "field_instruction": "question",
                                                                                "field_output": "a"}), headers=operator)  # fmt: skip
        assert wrong.status_code == 422 and "question" in wrong.json()["error"]["message"]
        assert client.get("/v1/tasks", headers=operator).json()["data"] == []  # nothing was stored


def test_competitor_keys_register_from_the_allowed_hosts_only(empty_api: Api) -> None:
    rules = empty_api.settings.api.model_copy(update={"competitor_repo_hosts": ("github.com",)})
    limited = replace(empty_api, settings=empty_api.settings.model_copy(update={"api": rules}))
    body = {"name": "probe", "repo": "git@10.0.0.7:internal/secrets.git", "commit": "a" * 40}
    with limited.client() as client:
        refused = client.post("/v1/competitors", json=body, headers=limited.auth("competitor"))
        assert refused.status_code == 422
        assert refused.json()["error"]["message"] == ("a competitor key registers repositories from github.com only "
                                                      "(api.competitor_repo_hosts), not 10.0.0.7")
        malformed = client.post("/v1/competitors", json=body | {"repo": "https://tok@github.com/a/b"}, headers=limited.auth("competitor"))
        assert malformed.status_code == 422 and "carries credentials" in malformed.json()["error"]["message"]
