"""`trainarena tournament create | show | list` and `trainarena champions` on a store the test fills
(the tournament is played by the fake executor; `tournament run` is the e2e test's)."""

from __future__ import annotations

import json

import pytest
from operator_data import FakeExecutor, OperatorData, register_example
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.execution.local import UnsafeBackendWarning
from trainarena.operations.tournaments import run_pool_tournament
from trainarena.store import get_stored_task, open_store

runner = CliRunner()


def _invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def _add(name: str, source: str) -> None:
    result = _invoke("task", "add", name, "--type", "instruct", "--base-model", "model", "--dataset", source, "--allow-reused-data",
                     "--field-instruction", "q", "--field-output", "a", "--budget", "5", "--pool", "weekly")  # one file, several tasks
    assert result.exit_code == 0, result.output


def test_create_show_list_and_champions(operator_data: OperatorData) -> None:
    for name in ("baseline", "instruct_only", "torchloop"):
        register_example(operator_data.settings, name)
    _add("from-jsonl", "rows.jsonl")

    refused = _invoke("tournament", "create", "--kind", "text", "--pool", "weekly", "--json")
    assert refused.exit_code == 1
    assert "pool 'weekly' has 1 usable task, but 3 entrants can play 2" in json.loads(refused.output)["error"]

    when = _invoke("tournament", "create", "--kind", "text", "--pool", "weekly", "--entry-closes", "yesterday")
    assert when.exit_code == 2 and when.stderr == ("error: --entry-closes 'yesterday' is not an ISO 8601 time; "
                                                   "write e.g. 2026-12-07T00:00:00+00:00\n")  # it named no option
    when = _invoke("tournament", "create", "--kind", "text", "--pool", "weekly", "--entry-closes", "yesterday", "--json")
    assert when.exit_code == 2 and json.loads(when.stdout)["error"].startswith("--entry-closes 'yesterday' is not")

    _add("from-csv", "rows.csv")
    created = _invoke("tournament", "create", "--kind", "text", "--pool", "weekly", "--seed", "3", "--json")
    assert created.exit_code == 0, created.output
    details = json.loads(created.output)
    assert details["entrants"] == ["baseline", "instruct_only", "torchloop"] and sorted(details["tasks"]) == ["from-csv", "from-jsonl"]

    with open_store(operator_data.settings) as store:
        result = run_pool_tournament(store, operator_data.settings, details["id"], executor=FakeExecutor())

    shown = json.loads(_invoke("tournament", "show", str(details["id"]), "--json").output)
    assert shown["id"] == details["id"] and shown["champion"] == result.champion and shown["pool"] == "weekly"
    assert shown["weights"] == result.weights and shown["boss"] is None
    assert {run["task"] for run in shown["runs"]} == set(details["tasks"])
    text = _invoke("tournament", "show", str(details["id"])).output
    assert f"Champion: {result.champion}" in text and "weekly: " in text

    listed = json.loads(_invoke("tournament", "list", "--json").output)
    assert [(t["id"], t["status"], t["champion_after"]) for t in listed] == [(details["id"], "finished", result.champion)]

    champions = json.loads(_invoke("champions", "--json").output)
    assert [(c["kind"], c["champion"], c["tournament_id"], c["margin"]) for c in champions] == [
        ("text", result.champion, details["id"], "no defending champion")
    ]
    assert result.champion in _invoke("champions").output
    assert "error" in _invoke("tournament", "show", "99", "--json").output

    # a stored task's leaderboard ranks its runs of every tournament (QA: --leaderboard was ignored)
    scored = {run["competitor"] for run in shown["runs"] if run["task"] == "from-csv" and run["score"] is not None}
    stored = json.loads(_invoke("task", "show", "from-csv", "--leaderboard", "--json").output)
    assert stored["name"] == "from-csv" and stored["leaderboard"] is not None
    assert {line["entrant"] for line in stored["leaderboard"]["lines"] if line["rank"] is not None} == scored
    board_text = _invoke("task", "show", "from-csv", "--leaderboard").output
    assert all(name in board_text for name in scored)
    runs_of_task = json.loads(_invoke("runs", "list", "--task", stored["task_digest"][:12], "--json").output)
    assert {run["task"] for run in runs_of_task} == {"from-csv"}
    _add("unplayed", "rows.jsonl")
    unplayed = json.loads(_invoke("task", "show", "unplayed", "--leaderboard", "--json").output)
    assert unplayed["leaderboard"] is None
    assert "no run is stored on this task yet" in _invoke("task", "show", "unplayed", "--leaderboard").output


def test_an_unknown_kind_is_a_usage_error_before_the_pool_is_looked_up(operator_data: OperatorData) -> None:
    for pool in ("weekly", "nope"):
        result = _invoke("tournament", "create", "--kind", "foo", "--pool", pool)
        message = " ".join(result.output.replace("│", " ").split())
        assert result.exit_code == 2 and "Invalid value for '--kind': Value error, 'foo' is not one of 'text', 'image'" in message
        assert "pool" not in message.split("Error", 1)[1]


def test_run_refuses_a_drawn_task_stored_with_no_finite_budget_in_one_line(operator_data: OperatorData) -> None:
    for name in ("baseline", "instruct_only"):
        register_example(operator_data.settings, name)
    _add("old", "rows.jsonl")
    created = json.loads(_invoke("tournament", "create", "--kind", "text", "--pool", "weekly", "--json").output)
    with open_store(operator_data.settings) as store, store.transaction() as session:  # as builds before the check stored it
        task = get_stored_task(session, "old")
        task.definition = {**task.definition, "budget_seconds": "inf"}
    with pytest.warns(UnsafeBackendWarning):  # --unsafe: no sandbox is needed to refuse before playing
        result = runner.invoke(app, ["tournament", "run", str(created["id"]), "--unsafe"], env={"COLUMNS": "300"})
    assert result.exit_code == 1 and "Traceback" not in result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith("error: stored task 'old': budget_seconds must be a positive number, got 'inf'; add the task again")
    assert _invoke("task", "show", "old").exit_code == 0
