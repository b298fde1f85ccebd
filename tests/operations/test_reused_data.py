"""`task add` refuses a dataset a stored task has (the same digest): each stored task splits its data
with a fresh secret key, so most of the new hidden rows would be rows the other task's scripts trained
on and could print. --allow-reused-data stores it, and both tasks say so in `task show` and `task list`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from operator_data import OperatorData
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.store import Tournament, TournamentDraw, get_pool, open_store

runner = CliRunner()
FLAGS = ("--type", "instruct", "--base-model", "model", "--field-instruction", "q", "--field-output", "a", "--pool", "weekly")


def _invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def _draw(data: OperatorData, task: str) -> None:
    """A tournament that drew ``task``, as a pool tournament's creation records it."""
    with open_store(data.settings) as store, store.transaction() as session:
        tournament = Tournament(name="weekly-1", kind="text", seed=1)
        session.add(tournament)
        session.flush()
        pool = get_pool(session, "weekly")
        assert pool is not None
        session.add(TournamentDraw(tournament_id=tournament.id, pool_id=pool.id, task_names=[task], entry_closes_at=datetime.now(UTC)))


def test_the_same_dataset_is_refused_naming_the_task_and_whether_it_was_played(operator_data: OperatorData) -> None:
    assert _invoke("task", "add", "sums", "--dataset", "rows.jsonl", *FLAGS).exit_code == 0
    unplayed = _invoke("task", "add", "sums2", "--dataset", "rows.jsonl", *FLAGS, "--json")
    assert unplayed.exit_code == 1
    error = json.loads(unplayed.output)["error"]
    assert "sums2: its dataset is the same" in error and "stored task 'sums' (not played yet)" in error
    assert "most of one task's hidden rows are rows the other's scripts train on" in error and "--allow-reused-data" in error
    _draw(operator_data, "sums")
    played = _invoke("task", "add", "sums2", "--dataset", str(operator_data.jsonl), *FLAGS)  # the same file, named otherwise
    assert played.exit_code == 1 and "stored task 'sums' (played in tournament weekly-1)" in played.stderr
    # The same rows in another file (CSV) are another dataset: only the same whole file or folder is caught.
    assert _invoke("task", "add", "sums-csv", "--dataset", "rows.csv", *FLAGS).exit_code == 0
    assert json.loads(_invoke("task", "show", "sums", "--json").output)["data_warning"] is None


def test_allow_reused_data_stores_it_with_a_warning_on_both_tasks(operator_data: OperatorData) -> None:
    assert _invoke("task", "add", "sums", "--dataset", "rows.jsonl", *FLAGS).exit_code == 0
    allowed = _invoke("task", "add", "sums2", "--dataset", "rows.jsonl", *FLAGS, "--allow-reused-data")
    assert allowed.exit_code == 0 and "stored sums2" in allowed.stdout
    assert "warning: its dataset is the same" in allowed.stderr and "'sums' (not played yet)" in allowed.stderr
    shown = json.loads(_invoke("task", "show", "sums2", "--json").output)
    assert "stored task 'sums' (not played yet)" in shown["data_warning"]
    assert shown["digests"]["dataset"] == json.loads(_invoke("task", "show", "sums", "--json").output)["digests"]["dataset"]
    assert "warning" in _invoke("task", "show", "sums").output and "'sums2'" in _invoke("task", "show", "sums").output
    listed = {row["name"]: row["data_warning"] for row in json.loads(_invoke("task", "list", "--stored", "--json").output)}
    assert "'sums2'" in listed["sums"] and "'sums'" in listed["sums2"]
    assert "warning: sums2: its dataset is the same" in _invoke("task", "list", "--stored").output


def test_task_check_says_when_a_stored_task_has_the_dataset(operator_data: OperatorData) -> None:
    task_file = operator_data.jsonl.parent / "sums.toml"
    task_file.write_text('name = "sums"\ntype = "instruct"\nbase_model = "model"\nbudget_seconds = 5\n'
                         '[dataset]\nsource = "rows.jsonl"\nfield_instruction = "q"\nfield_output = "a"\n')
    assert json.loads(_invoke("task", "check", str(task_file), "--json").output)["data_warning"] is None
    assert _invoke("task", "add", "stored", "--file", str(task_file)).exit_code == 0
    checked = _invoke("task", "check", str(task_file))
    assert checked.exit_code == 0 and "reused data" in checked.output and "'stored' (not played yet)" in checked.output
