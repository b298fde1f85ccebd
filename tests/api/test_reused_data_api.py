"""POST /v1/tasks refuses a dataset a stored task has, as `task add` does, unless the body says
allow_reused_data; the stored tasks then carry data_warning, and /v1/tasks/check reports it."""

from __future__ import annotations

from pathlib import Path

from api_client import Api
from operator_data import write_operator_data


def _task(name: str, model: Path, source: Path, **extra: object) -> dict:
    return {"name": name, "type": "instruct", "base_model": str(model), "budget_seconds": 5, "pool": "weekly",
            "dataset": {"source": str(source), "field_instruction": "q", "field_output": "a"}, **extra}  # fmt: skip


def test_a_reused_dataset_is_refused_unless_allowed_and_then_marked(empty_api: Api, tmp_path: Path) -> None:
    data = write_operator_data(tmp_path)
    operator = empty_api.auth("operator")
    with empty_api.client() as client:
        first = client.post("/v1/tasks", json=_task("sums", data.model, data.jsonl), headers=operator)
        assert first.status_code == 201 and first.json()["data_warning"] is None
        refused = client.post("/v1/tasks", json=_task("sums2", data.model, data.jsonl), headers=operator)
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "task_refused"
        message = refused.json()["error"]["message"]
        assert "its dataset is the same" in message and "stored task 'sums' (not played yet)" in message and "allow_reused_data" in message
        checked = client.post("/v1/tasks/check", json=_task("sums2", data.model, data.jsonl), headers=operator)
        assert checked.status_code == 200 and "stored task 'sums'" in checked.json()["data_warning"]
        other = client.post("/v1/tasks/check", json=_task("sums2", data.model, data.csv), headers=operator)
        assert other.status_code == 200 and other.json()["data_warning"] is None
        assert [t["name"] for t in client.get("/v1/tasks", headers=operator).json()["data"]] == ["sums"]

        allowed = client.post("/v1/tasks", json=_task("sums2", data.model, data.jsonl, allow_reused_data=True), headers=operator)
        assert allowed.status_code == 201 and "stored task 'sums' (not played yet)" in allowed.json()["data_warning"]
        assert "'sums2'" in client.get("/v1/tasks/sums", headers=operator).json()["data_warning"]
        listed = client.get("/v1/tasks", headers=operator).json()["data"]
        assert all(task["data_warning"] for task in listed) and len(listed) == 2
