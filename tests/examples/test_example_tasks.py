"""The ready task files of examples/tasks: one or more per task type, each named after its file, on
the built-in offline assets, and each one prepares and splits cleanly (`trainarena task check`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.contract import TaskType
from trainarena.tasks import read_task_file
from trainarena.tasks.builtin_assets import is_builtin
from trainarena.tasks.catalog import examples_folder, task_files

EXAMPLE_TASKS = task_files(examples_folder())


def test_every_task_type_has_an_example_named_after_its_file():
    tasks = [read_task_file(path) for path in EXAMPLE_TASKS]
    assert {task.task_type for task in tasks} == set(TaskType)
    for task in tasks:
        assert task.name == task.path.stem, f"{task.path.name}: name = {task.name!r}; `task show` takes the file stem"
        # Built-in assets only: the files work wherever the repository is cloned, whatever the data dir.
        assert is_builtin(task.base_model) and is_builtin(task.dataset["source"]), task.path.name
        assert task.budget_seconds <= 60, f"{task.path.name}: keep example budgets CPU demo-sized"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, assets, image_assets) -> Path:
    """A data dir whose assets folder holds the session's builds (linked, not built again)."""
    data = tmp_path / "data"
    (data / "cache" / "assets").mkdir(parents=True)
    for build in (assets.root, image_assets.root):
        (data / "cache" / "assets" / build.name).symlink_to(build, target_is_directory=True)
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(data))
    return data


@pytest.mark.parametrize("task_file", EXAMPLE_TASKS, ids=[path.stem for path in EXAMPLE_TASKS])
def test_example_task_passes_task_check(task_file: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    if read_task_file(task_file).task_type is TaskType.GRPO and shutil.which("bwrap") is None:
        pytest.skip("GRPO reward functions are tried in bubblewrap, which this machine lacks")
    monkeypatch.chdir(tmp_path)  # the files resolve against their own folder, not the working directory
    result = CliRunner().invoke(app, ["task", "check", str(task_file), "--json"])
    assert result.exit_code == 0, result.output
    check = json.loads(result.stdout)
    assert check["ok"] and check["hidden_rows"] > 0 and check["train_rows"] > check["hidden_rows"]
    assert check["dropped_rows"] == 0
    for path in (check["base_model"], check["source"]):
        assert path.startswith(str(data_dir / "cache" / "assets") + "/") and Path(path).exists()


def test_show_describes_an_example_by_name(data_dir: Path):
    result = CliRunner().invoke(app, ["task", "show", "instruct-arithmetic"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    text = "\n".join(line.rstrip() for line in result.stdout.splitlines())
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "task        instruct-arithmetic (instruct)" in text
    assert "base model  trainarena:tiny_llama\n            " + str(data_dir)[:60] in text
    assert "rows        1,200: 1,080 train, 120 hidden (scored), 0 dropped" in text
    assert "score       eval_loss, lower is better: sum of cross-entropy" in text
