"""Every list route pages as docs/api.md says: `limit` (default api.page_size, at most
api.page_size_max), `offset`, and on files/jobs/models/runs `after`; out-of-range values and an unknown
cursor are refused, never answered with the first page. A run filter naming no task is a 404."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_client import Api
from cli_store import add_undrawn_stored_task
from fastapi.testclient import TestClient
from model_world import World
from test_files import jsonl, qa_rows, upload
from test_models import _get

from trainarena.api import create_app
from trainarena.runs import task_key
from trainarena.settings import ApiRules, Settings
from trainarena.store import Store
from trainarena.store.adhoc import start_adhoc_run
from trainarena.store.models import RunOrigin


@pytest.fixture
def paged_client(tmp_path: Path, api_store: Store) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data", api=ApiRules(page_size=2, page_size_max=3))
    with TestClient(create_app(settings, store=api_store)) as test_client:
        yield test_client


def _ids(response) -> list[str]:  # noqa: ANN001
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()["data"]]


def test_files_page_with_the_settings_sizes_offset_and_after(paged_client: TestClient, auth: dict) -> None:
    who = auth["customer"]
    for i in range(4):
        assert upload(paged_client, who, f"d{i}.jsonl", jsonl(qa_rows())).status_code == 201
    everything = [_ids(paged_client.get("/v1/files", headers=who, params={"limit": 3}))]
    everything = everything[0] + _ids(paged_client.get("/v1/files", headers=who, params={"limit": 3, "offset": 3}))
    assert len(set(everything)) == 4
    first = paged_client.get("/v1/files", headers=who)
    assert _ids(first) == everything[:2] and first.json()["has_more"] is True  # api.page_size, not 100
    assert _ids(paged_client.get("/v1/files", headers=who, params={"limit": 1, "offset": 1})) == everything[1:2]
    assert _ids(paged_client.get("/v1/files", headers=who, params={"after": everything[1]})) == everything[2:4]
    for params in ({"limit": 4}, {"limit": 0}, {"offset": -3}):  # over api.page_size_max, or out of range
        assert paged_client.get("/v1/files", headers=who, params=params).status_code == 422, params
    stale = paged_client.get("/v1/files", headers=who, params={"after": "file-nope"})
    assert stale.status_code == 422 and "file-nope" in stale.json()["error"]["message"]
    # another customer's id is no cursor for this one (the same answer as an unknown one)
    assert paged_client.get("/v1/files", headers=auth["other"], params={"after": everything[0]}).status_code == 422


def test_a_parameter_a_route_does_not_take_is_refused_not_ignored(paged_client: TestClient, auth: dict) -> None:
    # /v1/tournaments takes no `after`: answering its first page again would make a client paging on it loop
    tournaments = paged_client.get("/v1/tournaments", headers=auth["competitor"], params={"after": "5"})
    assert tournaments.status_code == 422, tournaments.text
    error = tournaments.json()["error"]
    assert error["code"] == "invalid_request" and error["details"]["unknown"] == ["after"]
    assert "unknown query parameter after; /v1/tournaments takes: limit, offset" in error["message"]
    misspelt = paged_client.get("/v1/files", headers=auth["customer"], params={"limitt": 3, "offsett": 1})
    assert misspelt.status_code == 422 and "unknown query parameters limitt, offsett" in misspelt.json()["error"]["message"]
    assert paged_client.get("/v1/files", headers=auth["customer"], params={"limit": 3}).status_code == 200
    assert paged_client.get("/v1/champions", headers=auth["competitor"]).status_code == 200


def _run_ids(client: TestClient, api: Api, **params: object) -> tuple[list[int], bool]:
    response = client.get("/v1/runs", headers=api.auth("competitor"), params=params)
    assert response.status_code == 200, response.text
    return [run["run_id"] for run in response.json()["data"]], response.json()["has_more"]


def test_runs_page_by_cursor_through_the_list_offset_pages(api: Api, client: TestClient) -> None:
    with api.store.transaction() as session:  # runs outside tournaments, listed after the tournament's
        for _ in range(2):
            start_adhoc_run(session, origin=RunOrigin.ADHOC, definition={"name": "adhoc-task"}, digest="f" * 24)
    every = client.get("/v1/runs", headers=api.auth("competitor"), params={"limit": 500}).json()["data"]
    assert [run["tournament"] for run in every] == ["week-1"] * 4 + [None] * 2
    for filters in ({}, {"competitor": "crasher"}, {"status": "running"}, {"task": every[-1]["task"]}, {"tournament": "week-1"}):
        whole, more = _run_ids(client, api, **filters, limit=500)
        assert whole and not more
        walked, after = [], None
        while True:  # the client's walk: the next page after the last run of this one, until none follow
            page, more = _run_ids(client, api, **filters, limit=1, **({"after": after} if after else {}))
            walked += page
            if not more:
                break
            after = page[-1]
        assert walked == whole and len(set(walked)) == len(whole), filters
        assert _run_ids(client, api, **filters, after=whole[0], offset=1, limit=2)[0] == whole[2:4]
    for stale in ("999999", "abc", "0", "-1", str(2**31), "1e3"):
        answer = client.get("/v1/runs", headers=api.auth("competitor"), params={"after": stale})
        assert answer.status_code == 422, stale
        error = answer.json()["error"]
        assert error["code"] == "invalid_request" and error["details"] == {"field": "after"}
        assert f"after {stale!r} is none of the listed ids" in error["message"]
    operation = client.get("/openapi.json").json()["paths"]["/v1/runs"]["get"]
    assert {"limit", "offset", "after"} <= {p["name"] for p in operation["parameters"]}
    assert "`after`" in operation["description"]


def test_a_task_filter_naming_no_task_is_a_404_and_one_without_runs_an_empty_page(api: Api, client: TestClient) -> None:
    played = client.get("/v1/runs", headers=api.auth("competitor")).json()["data"][0]
    with api.store.transaction() as session:
        task = add_undrawn_stored_task(session)
    for name in ("nosuch", played["task_digest"][:5]):
        unknown = client.get("/v1/runs", headers=api.auth("competitor"), params={"task": name})
        assert unknown.status_code == 404, name
        assert unknown.json()["error"] == {"code": "not_found", "details": {"task": name}, "message": (
            f"no task named {name!r}; the task filter takes a task's name, or the first 6 or more characters of its digest")}
    # a task that is there answers its runs, none when the other filters leave none
    assert _run_ids(client, api, task=played["task_digest"][:6])[0][0] == played["run_id"]
    assert _run_ids(client, api, task=played["task"], status="running") == ([], False)
    # a stored task no tournament drew yet has no runs: so says the operator's list; a competitor may not see pools
    for name in (task.name, task_key(task)[:8]):
        answer = client.get("/v1/runs", headers=api.auth("operator"), params={"task": name})
        assert answer.status_code == 200 and answer.json() == {"data": [], "has_more": False}
        assert client.get("/v1/runs", headers=api.auth("competitor"), params={"task": name}).status_code == 404


def test_jobs_take_offset_and_refuse_a_stale_cursor(paged_client: TestClient, auth: dict) -> None:
    who = auth["customer"]
    assert paged_client.get("/v1/jobs", headers=who, params={"limit": 4}).status_code == 422
    assert paged_client.get("/v1/jobs", headers=who, params={"after": "job-nope"}).status_code == 422
    assert paged_client.get("/v1/jobs", headers=who, params={"offset": 5}).json() == {"object": "list", "data": [], "has_more": False}


def test_models_page_too(world: World) -> None:
    every = _ids(_get(world, "operator", "/v1/models"))
    assert len(every) == 3
    one = _get(world, "operator", "/v1/models?limit=1&offset=1")
    assert _ids(one) == every[1:2] and one.json()["has_more"] is True
    assert _ids(_get(world, "operator", f"/v1/models?after={every[0]}")) == every[1:]
    for query in ("limit=600", "offset=-3", "limit=0", "after=model-nope"):
        assert _get(world, "operator", f"/v1/models?{query}").status_code == 422, query
    # alice's own cursor works for her; bob's model is none of hers
    assert _get(world, "alice", f"/v1/models?after={world.models['bob']}").status_code == 422
    # a public model (the champion's) is a cursor every caller may page on from
    theirs = _ids(_get(world, "alice", "/v1/models"))
    assert set(theirs) == {world.models["alice"], world.models["champion"]}
    after_champion = theirs[theirs.index(world.models["champion"]) + 1:]
    assert _ids(_get(world, "alice", f"/v1/models?after={world.models['champion']}")) == after_champion
    params = {p["name"] for p in world.client.get("/openapi.json").json()["paths"]["/v1/models"]["get"]["parameters"]}
    assert {"limit", "offset", "after"} <= params
