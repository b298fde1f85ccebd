"""The task registry and task files."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from trainarena.contract import Direction, TaskType
from trainarena.tasks import TaskFileError, get_task_type, load_task_file, registered_task_types


def test_instruct_is_registered_and_scores_lower_is_better():
    plugin = get_task_type("instruct")
    assert plugin.task_type is TaskType.INSTRUCT and plugin.direction is Direction.LOWER
    assert TaskType.INSTRUCT in registered_task_types()


def test_an_unregistered_type_names_the_registered_ones():
    with pytest.raises(KeyError, match="'no-such-type' is not available; registered: instruct, .*image"):
        get_task_type("no-such-type")
    assert set(registered_task_types()) == set(TaskType)


def test_task_types_are_imported_only_when_asked_for():
    code = "import sys, trainarena.tasks; print('trainarena.tasks.instruct' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


TOML = """
name = "arith"
type = "instruct"
base_model = "model"
budget_seconds = 30
seed = 7
[dataset]
source = "rows.jsonl"
field_instruction = "instruction"
field_output = "output"
"""


def test_the_largest_seed_is_allowed(tmp_path):
    (tmp_path / "t.toml").write_text(TOML.replace("seed = 7", "seed = 2147483647"))
    assert load_task_file(tmp_path / "t.toml").seed == 2147483647


def test_toml_task_file_resolves_local_paths_relative_to_itself(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "rows.jsonl").write_text("{}\n")
    (tmp_path / "task.toml").write_text(TOML)
    task = load_task_file(tmp_path / "task.toml")
    assert task.task_type is TaskType.INSTRUCT and task.budget_seconds == 30.0 and task.seed == 7
    assert task.base_model == str((tmp_path / "model").resolve())
    assert task.dataset["source"] == str((tmp_path / "rows.jsonl").resolve())
    assert task.dataset["field_output"] == "output"


def test_json_task_file_keeps_hub_ids_as_written(tmp_path):
    data = {"name": "n", "type": "instruct", "base_model": "org/model", "budget_seconds": 1.5,
            "dataset": {"source": "org/dataset", "field_instruction": "q", "field_output": "a"}}
    (tmp_path / "task.json").write_text(json.dumps(data))
    task = load_task_file(tmp_path / "task.json")
    assert (task.base_model, task.dataset["source"], task.seed) == ("org/model", "org/dataset", 0)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("t.toml", TOML.replace('seed = 7', 'colour = "red"'), r"unknown \['colour'\]"),
        ("t.toml", TOML.replace('name = "arith"', ""), r"missing \['name'\]"),
        ("t.toml", TOML.replace('"instruct"', '"cooking"'), "type 'cooking' is not one of"),
        ("t.toml", TOML.replace("budget_seconds = 30", "budget_seconds = -1"), "budget_seconds must be a positive"),
        # TOML allows both; either would give a run no deadline.
        ("t.toml", TOML.replace("budget_seconds = 30", "budget_seconds = inf"), "budget_seconds must be a positive number, got inf"),
        ("t.toml", TOML.replace("budget_seconds = 30", "budget_seconds = nan"), "budget_seconds must be a positive number, got nan"),
        ("t.json", '{"name": "n", "type": "instruct", "base_model": "m", "budget_seconds": Infinity, "dataset": {}}',
         "budget_seconds must be a positive number, got inf"),
        ("t.toml", TOML.replace("seed = 7", 'seed = "x"'), "seed must be an integer"),
        # The jobs API's range: torch.manual_seed overflows past 64 bits, and so did the house script.
        ("t.toml", TOML.replace("seed = 7", "seed = 99999999999999999999"), "seed must be from 0 to 2147483647, got 99999999999999999999"),
        ("t.toml", TOML.replace("seed = 7", "seed = 2147483648"), "seed must be from 0 to 2147483647"),
        ("t.toml", TOML.replace("seed = 7", "seed = -7"), "seed must be from 0 to 2147483647, got -7"),
        ("t.toml", "name = ", "not valid TOML"),
        ("t.json", "[1, 2]", "must hold one object"),
        ("t.yaml", "name: x", "task files are .toml or .json"),
    ],
)
def test_bad_task_files_say_what_is_wrong(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(TaskFileError, match=message):
        load_task_file(tmp_path / name)


@pytest.mark.parametrize(("encoding", "where"), [("latin-1", "line 2 is not valid UTF-8 (byte offset 12: "), ("utf-16", "byte offset 0")])
def test_a_task_file_that_is_not_utf8_names_the_byte(tmp_path, encoding, where):
    (tmp_path / "t.toml").write_bytes(TOML.replace('"arith"', '"caf\u00e9"').encode(encoding))
    with pytest.raises(TaskFileError, match=rf"t\.toml: .*{re.escape(where)}.*save the file as UTF-8"):
        load_task_file(tmp_path / "t.toml")


def test_a_task_file_with_a_byte_order_mark_reads(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "t.toml").write_bytes(TOML.encode("utf-8-sig"))
    assert load_task_file(tmp_path / "t.toml").name == "arith"


def test_a_missing_task_file_is_a_task_file_error(tmp_path):
    with pytest.raises(TaskFileError, match="cannot read"):
        load_task_file(tmp_path / "absent.toml")


def _task_file(folder, base_model, source, task_type="instruct"):
    folder.mkdir(parents=True, exist_ok=True)
    data = {"name": "n", "type": task_type, "base_model": base_model, "budget_seconds": 1,
            "dataset": {"source": source, "field_instruction": "q", "field_output": "a"}}
    (folder / "task.json").write_text(json.dumps(data))
    return folder / "task.json"


def test_relative_paths_mean_the_task_files_folder_never_the_working_directory(tmp_path, monkeypatch):
    """The working directory holds files of the same names; the task file's folder does not (yet):
    the paths still name the task file's folder, so preparation reports the file it really looked for."""
    tmp_path = tmp_path.resolve()
    here = tmp_path / "cwd"
    (here / "data").mkdir(parents=True)
    (here / "data" / "rows.jsonl").write_text("{}\n")
    (here / "models" / "tiny").mkdir(parents=True)
    monkeypatch.chdir(here)
    tasks = tmp_path / "tasks"
    task = load_task_file(_task_file(tasks, "./models/tiny", "data/rows.jsonl"))
    assert task.base_model == str(tasks / "models" / "tiny")
    assert task.dataset["source"] == str(tasks / "data" / "rows.jsonl")


def test_a_relative_task_file_home_paths_and_hub_ids(tmp_path, monkeypatch):
    tmp_path = tmp_path.resolve()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tasks" / "org" / "local-model").mkdir(parents=True)
    task_file = _task_file(tmp_path / "tasks", "~/models/m", "org/name")
    task = load_task_file(task_file.relative_to(tmp_path))  # as typed: `--task tasks/task.json`
    assert task.base_model == str(tmp_path / "home" / "models" / "m")
    assert task.dataset["source"] == "org/name"  # nothing of that name beside the task file: a hub id
    # The same shape is a local folder when one of that name is beside the task file.
    task = load_task_file(_task_file(tmp_path / "tasks", "org/local-model", "org/name"))
    assert task.base_model == str(tmp_path / "tasks" / "org" / "local-model")


def test_an_image_dataset_is_always_a_local_path(tmp_path):
    """Image datasets are folders or zips (there is no hub loader for them): never an id."""
    tmp_path = tmp_path.resolve()
    task = load_task_file(_task_file(tmp_path, "org/sd-model", "people", task_type="image"))
    assert task.base_model == "org/sd-model" and task.dataset["source"] == str(tmp_path / "people")
