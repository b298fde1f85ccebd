"""The dashboard shows the server's own folders and hosts to a signed-in operator alone: a working tree's
folder (a run's source, a task board's entrant), a task's files on the server, a repository registered
from a path, and the drivers that executed a run's attempts; a visitor or a customer reads a neutral name."""

from __future__ import annotations

import socket

from fastapi.testclient import TestClient
from web_store import sign_in, text_of

from trainarena.attempts import withdraw_running_attempts
from trainarena.contract import TaskType
from trainarena.reporting.server_paths import SERVER_SOURCE
from trainarena.runs import definition_json, task_key
from trainarena.settings import Settings
from trainarena.store import get_competitor, open_store
from trainarena.store.adhoc import WorkingTree, start_adhoc_run
from trainarena.store.api_keys import create_key
from trainarena.store.models import ApiRole, RunOrigin
from trainarena.tasks.base import TaskDefinition

TREE = "/home/operator/my-tree"
REPO = "file:///srv/champions/crasher"


def _tree_run() -> int:
    """An ad-hoc run of :data:`TREE` on a task whose files are on the server, its first try withdrawn
    (so its page lists the attempts); and the crasher registered from a path on the server."""
    task = TaskDefinition("tree-task", TaskType.INSTRUCT, "/srv/models/tiny", {"source": "/srv/datasets/rows.jsonl"}, 10.0)
    with open_store(Settings()) as store, store.transaction() as session:
        run = start_adhoc_run(session, origin=RunOrigin.ADHOC, definition=definition_json(task), digest=task_key(task),
                              source=WorkingTree(TREE, "a" * 40, False, "/srv/snapshots/s1"))  # fmt: skip
        withdraw_running_attempts(run, "the service stopped")
        get_competitor(session, "crasher").repo_url = REPO
        return run.id


def _pages(client: TestClient, run_id: int) -> dict[str, str]:
    return {path: text_of(client.get(path).text) for path in (f"/runs/{run_id}", "/tasks/tree-task", "/competitors/crasher")}


def test_an_operator_alone_reads_the_servers_folders_and_hosts(client: TestClient) -> None:
    run_id = _tree_run()
    with open_store(Settings()) as store, store.transaction() as session:
        secrets = {role: create_key(session, role, role).secret for role in (ApiRole.CUSTOMER, ApiRole.OPERATOR)}
    host = socket.gethostname()
    for visitor in (None, secrets[ApiRole.CUSTOMER]):
        if visitor:
            sign_in(client, visitor)
        pages = _pages(client, run_id)
        for path, page in pages.items():
            assert TREE not in page and "/srv/" not in page and f"{host}:" not in page, (visitor, path)
        assert f"Source {SERVER_SOURCE} @ {'a' * 40}" in pages[f"/runs/{run_id}"]
        assert "base model tiny (on the server)" in pages[f"/runs/{run_id}"]
        assert "Status Started" in pages[f"/runs/{run_id}"]  # the attempts, without their drivers
        assert "my-tree (tree)" in pages["/tasks/tree-task"] and "rows.jsonl (on the server)" in pages["/tasks/tree-task"]
        assert f"Repository {SERVER_SOURCE}" in pages["/competitors/crasher"]
    sign_in(client, secrets[ApiRole.OPERATOR])
    pages = _pages(client, run_id)
    assert f"Source {TREE} @" in pages[f"/runs/{run_id}"] and "Status Driver Started" in pages[f"/runs/{run_id}"]
    assert f"{host}:" in pages[f"/runs/{run_id}"]
    assert TREE in pages["/tasks/tree-task"] and "/srv/datasets/rows.jsonl" in pages["/tasks/tree-task"]
    assert f"Repository {REPO}" in pages["/competitors/crasher"]
