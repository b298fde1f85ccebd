"""`trainarena task list [FOLDER]` and `trainarena task show NAME`: the task files to try, listed as
written and described as prepared (rows, split sizes, budget, what the score is), at 80 columns and as
JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainarena.cli import app
from trainarena.tasks.catalog import examples_folder

DPO_TASK = """
name = "prefs"
type = "dpo"
base_model = "models/tiny"
budget_seconds = 30
seed = 3
[dataset]
source = "prefs.jsonl"
field_prompt = "prompt"
field_chosen = "chosen"
field_rejected = "rejected"
prompt_format = "Q: {prompt}"
"""



@pytest.fixture
def dpo_task(tmp_path: Path) -> Path:
    """A DPO task file on local data: 40 prompts with two rejected answers each, and 2 unusable rows."""
    rows = [{"prompt": f"add {i} and 1", "chosen": str(i + 1), "rejected": str(i + d)} for i in range(40) for d in (2, 3)]
    rows += [{"prompt": "add 90 and 1", "chosen": "", "rejected": "92"}] * 2
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "prefs.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (folder / "prefs.toml").write_text(DPO_TASK)
    (folder / "models" / "tiny").mkdir(parents=True)  # a local model folder (its files are not read)
    return folder / "prefs.toml"


def text_of(output: str) -> str:
    lines = output.splitlines()
    assert all(len(line) <= 80 for line in lines), output
    return "\n".join(line.rstrip() for line in lines)


def test_list_shows_every_example_task_at_80_columns(runner):
    result = runner.invoke(app, ["task", "list"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    text = text_of(result.stdout)
    for line in (
        "│ instruct-arithmetic │ instruct │ tiny_llama │ arithmetic            │   30 s │",
        "│ dpo-arithmetic      │ dpo      │ tiny_llama │ preference_arithmetic │   30 s │",
        "│ image-person        │ image    │ tiny_sd    │ person_zxq            │   45 s │",
    ):
        assert line in text
    assert "a built-in asset (trainarena:NAME) is shown as NAME" in text


def test_list_json_holds_the_values_as_written(runner):
    result = runner.invoke(app, ["task", "list", "--json"])
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert {row["type"] for row in rows.values()} == {"instruct", "chat", "dpo", "grpo", "image"}
    assert rows["grpo-arithmetic"] == {
        "name": "grpo-arithmetic", "file": str(examples_folder() / "grpo-arithmetic.toml"), "type": "grpo",
        "base_model": "trainarena:tiny_llama", "dataset": "trainarena:grpo_arithmetic", "budget_seconds": 30.0,
        "seed": 1, "error": None,
    }
    assert not (Path.cwd() / "data").exists()


def test_list_of_a_folder_names_a_broken_file_and_goes_on(runner, dpo_task):
    (dpo_task.parent / "broken.toml").write_text('name = "x"\n')
    result = runner.invoke(app, ["task", "list", str(dpo_task.parent)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    text = text_of(result.stdout)
    # Another folder's task files are named by their `name` key, beside their file: `task show` takes the path.
    assert "│ prefs │ prefs.toml  │ dpo  │ models/tiny │ prefs.jsonl │   30 s │" in text and "│ -     │ broken.toml │ -" in text
    hint = f"describe one: trainarena task show {dpo_task.parent / 'FILE'}"  # folded at 80 columns where it is longer
    assert "".join(hint.split()) in "".join(text.split())
    assert "trainarena:NAME" not in text  # no built-in asset, no footnote
    assert "broken.toml: missing ['type', 'base_model', 'budget_seconds', 'dataset']" in " ".join(result.stderr.split())
    # A file saved in Latin-1 is one more warning, not a crash of the whole listing.
    (dpo_task.parent / "latin1.toml").write_bytes(DPO_TASK.replace('"prefs"', '"caf\u00e9"').encode("latin-1"))
    with_latin1 = runner.invoke(app, ["task", "list", str(dpo_task.parent)], env={"COLUMNS": "80"})
    assert with_latin1.exit_code == 0 and "│ prefs │ prefs.toml  │ dpo" in with_latin1.stdout and "│ latin1.toml │" in with_latin1.stdout
    assert "latin1.toml: line 2 is not valid UTF-8 (byte offset 12: invalid continuation byte); save the file as UTF-8" in (
        " ".join(with_latin1.stderr.split()))
    missing = runner.invoke(app, ["task", "list", str(dpo_task.parent / "nope"), "--json"])
    assert missing.exit_code == 1 and "no such folder of task files" in json.loads(missing.stdout)["error"]


def test_show_describes_a_task_file_at_80_columns(runner, dpo_task):
    result = runner.invoke(app, ["task", "show", str(dpo_task)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    text = text_of(result.stdout)
    assert "task        prefs (dpo)" in text
    assert "base model  models/tiny\n            /" in text  # as written, then resolved beside the file
    assert "dataset     prefs.jsonl\n            /" in text
    assert "rows        82: 72 train, 8 hidden (scored), 2 dropped" in text
    assert "budget      30 s, seed 3" in text
    assert "score       dpo_eval_loss, lower is better: mean over hidden rows of" in text
    assert 'fields      field_prompt = "prompt"\n            field_chosen = "chosen"' in text
    assert 'prompt_format = "Q: {prompt}"' in text


def test_show_json(runner, dpo_task):
    result = runner.invoke(app, ["task", "show", str(dpo_task), "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert (shown["name"], shown["type"], shown["base_model"], shown["dataset"]) == ("prefs", "dpo", "models/tiny", "prefs.jsonl")
    assert shown["dataset_path"] == str(dpo_task.parent / "prefs.jsonl")
    assert shown["base_model_path"] == str(dpo_task.parent / "models" / "tiny")
    assert (shown["rows"], shown["train_rows"], shown["hidden_rows"], shown["dropped_rows"]) == (82, 72, 8, 2)
    assert shown["score"]["metric"] == "dpo_eval_loss" and shown["score"]["direction"] == "lower"
    assert shown["fields"]["field_rejected"] == "rejected" and "source" not in shown["fields"]


def test_show_names_the_task_by_its_name_key_not_its_file(runner, dpo_task):
    renamed = dpo_task.rename(dpo_task.with_name("whatever.toml"))  # the name runs and boards use stays "prefs"
    shown = runner.invoke(app, ["task", "show", str(renamed)], env={"COLUMNS": "80"})
    assert shown.exit_code == 0 and "task        prefs (dpo)" in shown.stdout and "whatever (" not in shown.stdout
    assert json.loads(runner.invoke(app, ["task", "show", str(renamed), "--json"]).stdout)["name"] == "prefs"
    listed = json.loads(runner.invoke(app, ["task", "list", str(renamed.parent), "--json"]).stdout)
    assert [(row["name"], Path(row["file"]).name) for row in listed] == [("prefs", "whatever.toml")]


def test_show_of_an_unknown_name_lists_the_known_ones(runner):
    result = runner.invoke(app, ["task", "show", "instruct-arithmetik"], env={"COLUMNS": "80"})
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert "no task file 'instruct-arithmetik': not a file, nor a task in" in message
    assert "chat-arithmetic, dpo-arithmetic, grpo-arithmetic, image-person" in message
    as_json = json.loads(runner.invoke(app, ["task", "show", "instruct-arithmetik", "--json"]).stdout)
    assert as_json["ok"] is False and as_json["name"] == "instruct-arithmetik"


def test_show_of_a_task_that_cannot_be_prepared_names_the_problem(runner, dpo_task):
    dpo_task.write_text(DPO_TASK.replace('field_chosen = "chosen"', 'field_chosen = "good"'))
    result = runner.invoke(app, ["task", "show", str(dpo_task)], env={"COLUMNS": "80"})
    assert result.exit_code == 1 and "missing column 'good' (field_chosen)" in " ".join(result.stderr.split())
