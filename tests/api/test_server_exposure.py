"""What a competitor's key reads of the server through the API: no path under the data dir (a failure
reason or a log names it as the script saw it), no working tree's folder, no driver's host or pid. An
operator's key reads them all."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from api_client import Api

from trainarena.api.routes import competitors
from trainarena.attempts import store_report
from trainarena.contract import RunStatus, TaskType
from trainarena.reporting.server_paths import SERVER_SOURCE
from trainarena.runs import RunReport, definition_json, task_key
from trainarena.store.adhoc import WorkingTree, start_adhoc_run
from trainarena.store.models import Competitor, RunOrigin
from trainarena.submissions import RegistrationError
from trainarena.tasks.base import TaskDefinition

TREE = "/home/operator/my-tree"
# What a competitor reads for each place the run's texts name.
SCRIPT_SAW = "/output/model.safetensors"


def _failed_tree_run(api: Api) -> tuple[int, Path]:
    """An ad-hoc run of the working tree :data:`TREE` whose failure and stderr name its run folder; its id and folder."""
    run_dir = api.settings.work_dir / "adhoc" / "run-x"
    (run_dir / "logs").mkdir(parents=True)
    (run_dir / "logs" / "stderr.log").write_text(f"saving to {run_dir}/output/model.safetensors\n")
    task = TaskDefinition("tree-task", TaskType.INSTRUCT, "tiny", {"source": "rows.jsonl"}, 10.0)
    tree = WorkingTree(TREE, "a" * 40, False, str(api.settings.data_dir / "snapshots" / "s1"))
    reason = f"artifact: the output could not be read ({run_dir}/output/model.safetensors: Permission denied)"
    with api.store.transaction() as session:
        run = start_adhoc_run(session, origin=RunOrigin.ADHOC, definition=definition_json(task), digest=task_key(task), source=tree)
        store_report(session, run.id, 1, RunReport(RunStatus.INVALID, time.time(), time.time(), log_path=run_dir / "logs",
                                                   failure_reason=reason))  # fmt: skip
        return run.id, run_dir


def test_a_competitor_reads_runs_without_the_servers_paths_and_hosts(api: Api) -> None:
    run_id, run_dir = _failed_tree_run(api)
    data_dir, host = str(api.settings.data_dir), socket.gethostname()
    with api.client() as client:
        seen = {path: client.get(path, headers=api.auth("competitor")) for path in (
            "/v1/runs?limit=100", f"/v1/runs/{run_id}", f"/v1/runs/{run_id}/logs", "/v1/task-leaderboards/tree-task",
            "/v1/tournaments", f"/v1/tournaments/{api.finished.tournament_id}", "/v1/competitors")}  # fmt: skip
        operator = client.get(f"/v1/runs/{run_id}", headers=api.auth("operator")).json()
    for path, response in seen.items():
        assert response.status_code == 200, (path, response.text)
        assert data_dir not in response.text and TREE not in response.text, path
    detail = seen[f"/v1/runs/{run_id}"].json()
    assert detail["repo_url"] == SERVER_SOURCE and detail["competitor"] == "my-tree (tree)"
    assert detail["reason"] == f"artifact: the output could not be read ({SCRIPT_SAW}: Permission denied)"
    assert detail["stderr_tail"] == f"saving to {SCRIPT_SAW}" and seen[f"/v1/runs/{run_id}/logs"].text == f"saving to {SCRIPT_SAW}\n"
    assert all(set(attempt) == {"number", "status", "counts", "started_at", "wall_seconds", "score", "reason"}
               for attempt in detail["attempt_history"])  # fmt: skip
    assert host not in seen[f"/v1/runs/{run_id}"].text
    assert [line["entrant"] for line in seen["/v1/task-leaderboards/tree-task"].json()["lines"]] == ["my-tree (tree)"]
    # The operator reads the tree, the run folder and the driver that executed the attempt.
    assert operator["repo_url"] == TREE and str(run_dir) in operator["reason"] and str(run_dir) in operator["stderr_tail"]
    assert operator["attempt_history"][0]["driver"].startswith(f"{host}:")


def test_a_competitor_cannot_probe_a_server_path_with_the_runs_filter(api: Api) -> None:
    """A tree's path answers as a path no run was made from; the tree's label, shown in the list, still filters."""
    run_id, _run_dir = _failed_tree_run(api)
    with api.client() as client:
        def runs(role: str, competitor: str):  # noqa: ANN202
            return client.get("/v1/runs", params={"competitor": competitor}, headers=api.auth(role))

        ran, never = runs("competitor", TREE), runs("competitor", "/home/operator/never-ran")
        assert (ran.status_code, never.status_code) == (404, 404)
        assert ran.json()["error"]["message"] == f"no competitor named {TREE!r}; the competitor filter takes a registered " \
            "competitor's name, a working tree's as the list shows it ('NAME (tree)'), 'base model' or 'house script'"
        assert ran.json()["error"]["message"].replace(TREE, "/home/operator/never-ran") == never.json()["error"]["message"]
        assert [run["run_id"] for run in runs("competitor", "my-tree (tree)").json()["data"]] == [run_id]
        assert [run["run_id"] for run in runs("operator", TREE).json()["data"]] == [run_id]
        assert "or its path" in runs("operator", "/home/operator/never-ran").json()["error"]["message"]


def test_a_competitor_reads_a_repository_on_the_server_as_such(api: Api) -> None:
    """An operator may register a path on the server; a competitor's key reads where it is as SERVER_SOURCE."""
    with api.store.transaction() as session:
        name = session.query(Competitor).first().name
        session.query(Competitor).filter_by(name=name).one().repo_url = "file:///srv/champions/repo"
    with api.client() as client:
        as_competitor = client.get(f"/v1/competitors/{name}", headers=api.auth("competitor")).json()
        as_operator = client.get(f"/v1/competitors/{name}", headers=api.auth("operator")).json()
    assert (as_competitor["repo_url"], as_operator["repo_url"]) == (SERVER_SOURCE, "file:///srv/champions/repo")


def test_a_refused_registration_names_no_path_on_the_server(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """git's error names the server's cache of the repository: a competitor's key reads it relative to the data dir."""
    cache = api.settings.cache_dir / "repos" / "abc"

    def refused(*_args: object, **_options: object) -> None:
        raise RegistrationError(f"git fetch failed: fatal: '{cache}' does not appear to be a git repository")

    monkeypatch.setattr(competitors, "register_competitor", refused)
    body = {"name": "newcomer", "repo": "https://github.com/example/newcomer.git", "commit": "c" * 40}
    with api.client() as client:
        answers = {role: client.post("/v1/competitors", headers=api.auth(role), json=body).json() for role in ("competitor", "operator")}
    assert answers["competitor"]["error"]["message"] == (
        "git fetch failed: fatal: '<data dir>/cache/repos/abc' does not appear to be a git repository")
    assert str(cache) in answers["operator"]["error"]["message"]
