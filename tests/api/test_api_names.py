"""POST /v1/tasks, /v1/tasks/check and /v1/tournaments refuse task, pool and tournament names the
competitor name rule forbids (QA: `a/../b`, `..`, a blank, NUL and newlines were stored, and some such
tasks could not be named in a URL any more), with a 422 saying what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_client import Api
from operator_data import write_operator_data

ALLOWED = "use 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit"


def _task(data, name: str, pool: str = "weekly") -> dict:
    return {"name": name, "type": "instruct", "base_model": str(data.model), "budget_seconds": 5, "pool": pool,
            "dataset": {"source": str(data.jsonl), "field_instruction": "q", "field_output": "a"}}  # fmt: skip


@pytest.mark.parametrize("route", ["/v1/tasks", "/v1/tasks/check"])
def test_a_task_name_the_rule_forbids_is_refused(empty_api: Api, tmp_path: Path, route: str) -> None:
    data = write_operator_data(tmp_path)
    operator = empty_api.auth("operator")
    with empty_api.client() as client:
        for name in ("<script>alert(1)</script>", "a/../b", "..", " ", "x\x00y", "new\nline"):
            refused = client.post(route, json=_task(data, name), headers=operator)
            assert refused.status_code == 422, (name, refused.text)
            error = refused.json()["error"]
            assert error["code"] == "task_refused" and error["message"] == f"task name {name!r} is not allowed: {ALLOWED}"
        assert client.post(route, json=_task(data, "sums-1.b_c"), headers=operator).status_code in (200, 201)


def test_a_new_pool_named_against_the_rule_is_refused_and_nothing_is_stored(empty_api: Api, tmp_path: Path) -> None:
    data = write_operator_data(tmp_path)
    operator = empty_api.auth("operator")
    with empty_api.client() as client:
        refused = client.post("/v1/tasks", json=_task(data, "t1", pool="<b>pool</b>"), headers=operator)
        assert refused.status_code == 422
        assert refused.json()["error"]["message"] == f"pool name '<b>pool</b>' is not allowed: {ALLOWED}"
        assert client.get("/v1/tasks", headers=operator).json()["data"] == []
        assert client.get("/v1/pools", headers=operator).json() == []


def test_a_tournament_name_the_rule_forbids_is_refused(empty_api: Api, tmp_path: Path) -> None:
    operator = empty_api.auth("operator")
    with empty_api.client() as client:
        refused = client.post("/v1/tournaments", json={"kind": "text", "pool": "weekly", "name": "<script>alert(9)</script>"},
                              headers=operator)  # fmt: skip
        assert refused.status_code == 422
        error = refused.json()["error"]
        assert error["code"] == "tournament_refused"
        assert error["message"] == f"tournament name '<script>alert(9)</script>' is not allowed: {ALLOWED}"
