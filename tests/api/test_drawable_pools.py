"""``GET /v1/pools/drawable``: a competitor reads what each pool can still draw (types, base models,
budgets), so it knows what its trainarena.toml must support to enter; never a task's name or data."""

from __future__ import annotations

import json
from pathlib import Path

from api_client import Api
from operator_data import ROWS, write_operator_data


def test_competitors_read_each_pools_drawable_types_models_and_budgets_but_no_task_or_data(empty_api: Api, tmp_path: Path) -> None:
    data = write_operator_data(tmp_path)
    chats = tmp_path / "secret-chats.jsonl"
    chats.write_text("".join(json.dumps({"messages": [{"role": "user", "content": row["q"]},
                                                      {"role": "assistant", "content": row["a"]}]}) + "\n" for row in ROWS))
    instruct = {"type": "instruct", "base_model": str(data.model), "pool": "weekly", "allow_reused_data": True,  # one file, three tasks
                "dataset": {"source": str(data.jsonl), "field_instruction": "q", "field_output": "a"}}  # fmt: skip
    tasks = [{"name": "gsm8k-secret-1", "budget_seconds": 5, **instruct}, {"name": "gsm8k-secret-2", "budget_seconds": 5, **instruct},
             {"name": "gsm8k-secret-3", "budget_seconds": 60, **instruct},
             {"name": "chat-secret", "type": "chat", "base_model": str(data.model), "budget_seconds": 5, "pool": "weekly",
              "dataset": {"source": str(chats)}}]  # fmt: skip
    with empty_api.client() as client:
        for task in tasks:
            assert client.post("/v1/tasks", json=task, headers=empty_api.auth("operator")).status_code == 201
        chats.unlink()  # the chat task cannot be drawn any more: its type is not the pool's

        answer = client.get("/v1/pools/drawable", headers=empty_api.auth("competitor"))
        by_operator = client.get("/v1/pools/drawable", headers=empty_api.auth("operator")).json()
    assert answer.status_code == 200, answer.text
    assert answer.json() == [{
        "name": "weekly", "kind": "text", "tasks": 3, "task_types": ["instruct"],
        "setups": [{"type": "instruct", "base_model": "model (on the server)", "budget_seconds": 5.0, "tasks": 2},
                   {"type": "instruct", "base_model": "model (on the server)", "budget_seconds": 60.0, "tasks": 1}],
    }]
    assert "secret" not in answer.text and str(tmp_path) not in answer.text  # no task name, dataset or path
    assert {setup["base_model"] for setup in by_operator[0]["setups"]} == {str(data.model)}  # an operator reads the path
