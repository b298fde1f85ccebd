"""A customer's job run is the customer's: its data and logs never show in the run listings, run pages,
logs or task boards that competitors (and the public dashboard) read; the operator's CLI still shows it."""

from __future__ import annotations

from dataclasses import replace

from fastapi.testclient import TestClient

from trainarena.api import create_app
from trainarena.contract import TaskType
from trainarena.reporting.run_detail import read_run_detail
from trainarena.reporting.run_list import list_runs
from trainarena.reporting.task_board import played_task
from trainarena.runs import definition_json, task_key
from trainarena.settings import Settings
from trainarena.store import Store
from trainarena.store.adhoc import start_adhoc_run
from trainarena.store.models import RunOrigin
from trainarena.tasks.base import TaskDefinition


def _job_run(store: Store, tmp_log) -> int:  # noqa: ANN001
    task = TaskDefinition("job-0123456789abcdef", TaskType.INSTRUCT, "tiny", {"source": "secret.jsonl"}, 10.0)
    with store.transaction() as session:
        run = start_adhoc_run(session, origin=RunOrigin.JOB, definition=definition_json(task), digest=task_key(task))
        run.attempt_records[-1].log_path = str(tmp_log)
        return run.id


def test_job_runs_are_hidden_from_competitors_and_the_dashboard(tmp_path, auth: dict, api_settings: Settings, api_store: Store) -> None:  # noqa: ANN001
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "stderr.log").write_text("customer row: my secret prompt\n")
    run_id = _job_run(api_store, logs)
    with TestClient(create_app(api_settings, store=api_store)) as client:
        assert client.get("/v1/runs", headers=auth["competitor"]).json()["data"] == []
        for path in (f"/v1/runs/{run_id}", f"/v1/runs/{run_id}/logs"):
            assert client.get(path, headers=auth["competitor"]).status_code == 404
        assert client.get(f"/runs/{run_id}").status_code == 404
        page = client.get(f"/runs/{run_id}/logs/stderr.log")
        assert page.status_code == 404 and "secret" not in page.text
        assert client.get("/tasks/job-0123456789abcdef").status_code == 404
        for role in ("competitor", "operator"):  # nor is its task a name the run list knows, nor its run a cursor
            assert client.get("/v1/runs", headers=auth[role], params={"task": "job-0123456789abcdef"}).status_code == 404
            assert client.get("/v1/runs", headers=auth[role], params={"after": run_id}).status_code == 422
    with api_store.session() as session:
        assert list_runs(session) == []
        assert read_run_detail(session, run_id, tail_lines=5, private=True).origin == RunOrigin.JOB


def _run_on(store: Store, origin: str, task: TaskDefinition) -> int:
    with store.transaction() as session:
        return start_adhoc_run(session, origin=origin, definition=definition_json(task), digest=task_key(task)).id


def test_a_job_under_a_public_tasks_name_neither_hides_nor_joins_its_board(auth: dict, api_settings: Settings, api_store: Store) -> None:
    """A job's task named as a public one (and newer) left that task's board 'unknown' everywhere, and
    could have listed the job's digest among its other definitions (QA)."""
    public = TaskDefinition("shared", TaskType.INSTRUCT, "tiny", {"source": "public.jsonl"}, 10.0, seed=1)
    _run_on(api_store, RunOrigin.ADHOC, public)
    secret = TaskDefinition("shared", TaskType.INSTRUCT, "tiny", {"source": "customer-secret.jsonl"}, 10.0)
    assert task_key(secret) != task_key(public)
    _run_on(api_store, RunOrigin.JOB, replace(public, seed=987654))  # the same definition, its own seed
    _run_on(api_store, RunOrigin.JOB, secret)  # the newest task of the name
    with api_store.session() as session:
        played = played_task(session, "shared")
    assert (played.board.digest, played.board.other_digests) == (task_key(public), [])
    assert played.definition["seed"] == 1 and [line.runs for line in played.board.lines] == [1]
    with TestClient(create_app(api_settings, store=api_store)) as client:
        board = client.get("/v1/task-leaderboards/shared", headers=auth["competitor"])
        assert board.status_code == 200 and board.json()["digest"] == task_key(public) and board.json()["other_digests"] == []
        assert client.get(f"/v1/task-leaderboards/{task_key(secret)[:12]}", headers=auth["competitor"]).status_code == 404
        page = client.get("/tasks/shared")
        assert page.status_code == 200 and "public.jsonl" in page.text
        assert "customer-secret" not in page.text and task_key(secret)[:12] not in page.text and "987654" not in page.text
