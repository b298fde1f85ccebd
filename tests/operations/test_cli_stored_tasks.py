"""`trainarena task add | list --stored | show | remove` on data the test writes."""

from __future__ import annotations

import json
import re

from operator_data import OperatorData
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.store import get_stored_task, open_store

runner = CliRunner()


def _invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_add_list_show_and_remove_a_stored_task(operator_data: OperatorData) -> None:
    added = _invoke("task", "add", "sums", "--type", "instruct", "--base-model", "model", "--dataset", "saved",
                    "--field-instruction", "q", "--field-output", "a", "--budget", "5", "--pool", "mine", "--json")
    assert added.exit_code == 0, added.output
    details = json.loads(added.output)
    assert details["pool"] == "mine" and details["dataset"] == str(operator_data.saved)
    # read where it lies, not copied into the data directory: docs/deploy.md has the operator back it up
    assert not operator_data.saved.is_relative_to(operator_data.settings.data_dir)
    assert details["train_rows"] + details["hidden_rows"] == 40 and len(details["digests"]["hidden_split"]) == 64

    listed = _invoke("task", "list", "--pool", "mine", "--json")
    assert [row["name"] for row in json.loads(listed.output)] == ["sums"]
    assert "sums" in _invoke("task", "list", "--stored").output
    assert "instruct-arithmetic" in _invoke("task", "list").output  # the example task files, as before

    shown = _invoke("task", "show", "sums")
    assert shown.exit_code == 0 and details["digests"]["dataset"] in shown.output and "pool mine" in shown.output

    assert _invoke("task", "remove", "sums").exit_code == 0
    assert json.loads(_invoke("task", "list", "--stored", "--json").output) == []


def test_add_from_a_task_file_and_refusals_name_the_problem(operator_data: OperatorData) -> None:
    task_file = operator_data.jsonl.parent / "sums.toml"
    task_file.write_text('name = "from-file"\ntype = "instruct"\nbase_model = "model"\nbudget_seconds = 5\n'
                         '[dataset]\nsource = "rows.csv"\nfield_instruction = "q"\nfield_output = "a"\n')
    assert _invoke("task", "add", "--file", str(task_file)).exit_code == 0
    again = _invoke("task", "add", "--file", str(task_file), "--json")
    assert again.exit_code == 1 and "already stored" in json.loads(again.output)["error"]
    # The message names the pool: typed as it said, the task went to the kind's default pool ('text').
    assert "already stored in pool 'text'; give a task on other data another name" in json.loads(again.output)["error"]
    # NAME renames the file's task; the same data under it is refused (tests/operations/test_reused_data.py) unless allowed.
    renamed = _invoke("task", "add", "from-file-2", "--file", str(task_file), "--allow-reused-data", "--json")
    assert renamed.exit_code == 0, renamed.output
    assert json.loads(renamed.output)["name"] == "from-file-2"
    # --budget and --seed with --file are the task's, as NAME is its name (--budget was dropped without a word).
    shorter = _invoke("task", "add", "from-file-3", "--file", str(task_file), "--budget", "2.5", "--seed", "9",
                      "--allow-reused-data", "--json")
    assert shorter.exit_code == 0 and json.loads(shorter.output)["budget_seconds"] == 2.5
    with open_store(operator_data.settings) as store, store.session() as session:
        assert get_stored_task(session, "from-file-3").definition["seed"] == 9
    assert {row["name"] for row in json.loads(_invoke("task", "list", "--stored", "--json").output)} == {"from-file", "from-file-2", "from-file-3"}
    mixed = _invoke("task", "add", "x", "--file", str(task_file), "--type", "instruct")
    assert mixed.exit_code == 1 and "not both" in mixed.output
    bad_column = _invoke("task", "add", "x", "--type", "instruct", "--base-model", "model", "--dataset", "rows.jsonl",
                         "--field-instruction", "nope", "--field-output", "a")
    assert bad_column.exit_code == 1 and "missing column 'nope'" in bad_column.output
    missing = _invoke("task", "add", "x", "--type", "instruct", "--dataset", "rows.jsonl")
    assert missing.exit_code == 1 and "--base-model" in missing.output


def test_flags_take_the_task_files_seed_and_their_messages_name_no_made_up_file(operator_data: OperatorData) -> None:
    """``--seed 3`` was taken for a dataset key ("dataset spec: unknown key(s) ['seed']"), and a flag's
    problem was named after a file that does not exist ("/cwd/task add flags: base_model: ...")."""
    flags = ("--type", "instruct", "--base-model", "model", "--dataset", "rows.jsonl", "--field-instruction", "q", "--field-output", "a")
    assert _invoke("task", "add", "seeded", *flags, "--seed", "3").exit_code == 0
    with open_store(operator_data.settings) as store, store.session() as session:
        assert get_stored_task(session, "seeded").definition["seed"] == 3
    negative = _invoke("task", "add", "negative", *flags, "--seed", "-1")
    assert negative.exit_code == 2 and "Invalid value for '--seed'" in negative.output
    image = _invoke("task", "add", "pictures", "--type", "image", "--base-model", "trainarena:tiny_llama", "--dataset", "rows.jsonl")
    assert image.exit_code == 1 and image.output.startswith("error: base_model: 'trainarena:tiny_llama' is a built-in text model")
    assert "task add flags" not in image.output


def test_an_infinite_budget_is_refused_and_a_stored_one_does_not_break_the_listings(operator_data: OperatorData) -> None:
    flags = ("--type", "instruct", "--base-model", "model", "--dataset", "rows.jsonl", "--field-instruction", "q", "--field-output", "a")
    refused = _invoke("task", "add", "forever", *flags, "--budget", "inf")
    assert refused.exit_code == 2 and "must be a finite number of seconds above 0, got inf" in " ".join(refused.output.replace("│", " ").split())
    assert _invoke("task", "add", "old", *flags, "--budget", "5").exit_code == 0
    # A row stored before the check existed (JSON keeps an infinite float as a string).
    with open_store(operator_data.settings) as store, store.transaction() as session:
        task = get_stored_task(session, "old")
        task.definition = {**task.definition, "budget_seconds": "inf"}
    listed = _invoke("task", "list", "--stored")
    assert listed.exit_code == 0 and "inf s" in listed.output
    shown = _invoke("task", "show", "old")
    assert shown.exit_code == 0 and "inf s" in shown.output


def test_show_of_a_stored_task_says_which_way_is_better(operator_data: OperatorData) -> None:
    """As file and played tasks do: the task's type fixes it (a stored task's show had no score line)."""
    assert _invoke("task", "add", "sums", "--type", "instruct", "--base-model", "model", "--dataset", "saved",
                   "--field-instruction", "q", "--field-output", "a", "--pool", "mine").exit_code == 0
    shown = _invoke("task", "show", "sums").output
    assert re.search(r"^score {2,}lower is better$", shown, re.MULTILINE), shown
    assert json.loads(_invoke("task", "show", "sums", "--json").output)["direction"] == "lower"


def test_a_stored_task_named_as_an_example_task_file_points_to_the_file(operator_data: OperatorData) -> None:
    """The README's `task show instruct-arithmetic --leaderboard`, after an operator stored the example file in
    a pool, showed the stored task's empty board with no word of the file's, where the ad-hoc runs are."""
    assert _invoke("task", "add", "instruct-arithmetic", "--type", "instruct", "--base-model", "model", "--dataset",
                   "saved", "--field-instruction", "q", "--field-output", "a", "--pool", "mine").exit_code == 0
    shown = runner.invoke(app, ["task", "show", "instruct-arithmetic", "--leaderboard"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "pool mine" in shown.stdout
    note = " ".join(shown.stderr.split())
    assert "examples/tasks/instruct-arithmetic.toml has this name too" in note
    assert "examples/tasks/instruct-arithmetic.toml --leaderboard` shows it" in note and "`trainarena task show /" in note
    assert "note" not in _invoke("task", "show", "instruct-arithmetic", "--json").stderr  # --json: stdout alone


def test_a_task_file_whose_dataset_has_no_source_is_one_line(operator_data: OperatorData) -> None:
    """It was a KeyError traceback from dataset_digest, which ran before the spec was checked."""
    task_file = operator_data.jsonl.parent / "nosrc.toml"
    task_file.write_text('name = "nosrc"\ntype = "instruct"\nbase_model = "model"\nbudget_seconds = 3\n'
                         '[dataset]\nfield_instruction = "q"\nfield_output = "a"\n')
    refused = runner.invoke(app, ["task", "add", "--file", str(task_file)])
    assert refused.exit_code == 1 and isinstance(refused.exception, SystemExit), refused.exception
    assert "dataset spec: missing required key(s) ['source']" in refused.output and "Traceback" not in refused.output


def test_check_of_a_stored_tasks_name_points_to_task_show(operator_data: OperatorData) -> None:
    """`task check NAME` of a stored task said 'cannot read the task file', as if NAME were a missing file."""
    assert _invoke("task", "add", "sums", "--type", "instruct", "--base-model", "model", "--dataset", "saved",
                   "--field-instruction", "q", "--field-output", "a", "--pool", "mine").exit_code == 0
    checked = _invoke("task", "check", "sums", "--json")
    assert checked.exit_code == 1 and json.loads(checked.output) == {
        "ok": False, "file": "sums",
        "error": "sums is a stored task (pool mine), not a task file: it was checked when it was added; "
                 "`trainarena task show sums` shows its rows, split and digests",
    }
    assert "cannot read the task file" in _invoke("task", "check", "no-such-task").output  # no stored task: a file it cannot read
