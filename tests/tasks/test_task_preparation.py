"""Preparing a task for runs (``task_preparation.TaskPreparer``): staged, so a failure leaves no folder behind,
and the prepared record, dropped rows included, reaches the cache marker and the run's report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainarena.contract import RunStatus, TaskType
from trainarena.execution.base import RunResult
from trainarena.pipeline import SandboxedExecutor
from trainarena.runs import CompetitorInfo, definition_digest
from trainarena.settings import DataRules, Settings
from trainarena.submissions import checkout_path
from trainarena.task_preparation import TaskPreparer, staged_leftovers, task_folders
from trainarena.tasks import DatasetError, PreparedTask, TaskDefinition

COMMIT = "a" * 40
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # git's id of an empty tree: an empty checkout's


def dpo_task(tmp_path: Path, empty_rows: int, good_rows: int = 40) -> TaskDefinition:
    rows = [{"p": f"q{i}", "c": "good", "r": "bad"} for i in range(good_rows)] + [{"p": f"e{i}", "c": "", "r": "x"} for i in range(empty_rows)]
    source = tmp_path / f"rows-{empty_rows}.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    dataset = {"source": str(source), "field_prompt": "p", "field_chosen": "c", "field_rejected": "r"}
    return TaskDefinition(f"dpo-{empty_rows}", TaskType.DPO, str(tmp_path / "model"), dataset, 5)


def folders(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir())


def test_a_failed_preparation_leaves_no_folder(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    with pytest.raises(DatasetError, match="are unusable"):
        TaskPreparer(settings).prepare(dpo_task(tmp_path, empty_rows=20))
    assert not settings.data_dir.exists() or folders(settings.data_dir) == []


def test_an_interrupted_preparation_leaves_no_folder_and_keeps_other_tasks(tmp_path, monkeypatch):
    settings = Settings(data_dir=tmp_path / "data")
    kept = TaskPreparer(settings).prepare(dpo_task(tmp_path, empty_rows=0))
    before = folders(settings.data_dir)

    class Interrupted:
        def prepare(self, task, train_dir, hidden_dir, settings):
            (Path(train_dir) / "train.jsonl").write_text("{}\n")
            (Path(hidden_dir) / "hidden.jsonl").write_text("{}\n")
            raise KeyboardInterrupt

    monkeypatch.setattr("trainarena.task_preparation.get_task_type", lambda task_type: Interrupted())
    with pytest.raises(KeyboardInterrupt):
        TaskPreparer(settings).prepare(dpo_task(tmp_path, empty_rows=1))
    assert folders(settings.data_dir) == before and kept.hidden_file.is_file()


def test_task_folders_name_where_a_preparation_writes_and_stages(tmp_path, monkeypatch):
    """What ``jobs.copies`` removes of a job's task: the folders ``task_folders`` names, and while a
    preparation runs (or after one was killed) the staging folders ``staged_leftovers`` finds."""
    settings = Settings(data_dir=tmp_path / "data")
    task = dpo_task(tmp_path, empty_rows=0)
    train, hidden = task_folders(settings, definition_digest(task))
    prepared = TaskPreparer(settings).prepare(task)
    assert prepared.train_file.parent == train and prepared.hidden_file.parent == hidden
    assert staged_leftovers(train) == staged_leftovers(hidden) == []
    seen = []

    class Killed:
        def prepare(self, task, train_dir, hidden_dir, settings):
            seen.append((train_dir, hidden_dir))
            raise KeyboardInterrupt

    monkeypatch.setattr("trainarena.task_preparation.get_task_type", lambda task_type: Killed())
    other = dpo_task(tmp_path, empty_rows=1)
    other_train, other_hidden = task_folders(settings, definition_digest(other))
    with pytest.raises(KeyboardInterrupt):
        TaskPreparer(settings).prepare(other)
    [(train_stage, hidden_stage)] = seen
    assert train_stage.parent == other_train.parent and hidden_stage.parent == other_hidden.parent
    for stage, folder in ((train_stage, other_train), (hidden_stage, other_hidden)):
        stage.mkdir()  # as a killed process would have left it
        assert staged_leftovers(folder) == [stage] and staged_leftovers(train if folder == other_train else hidden) == []


def test_dropped_rows_are_kept_in_the_marker_and_read_back(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    task = dpo_task(tmp_path, empty_rows=3)
    prepared = TaskPreparer(settings).prepare(task)
    assert [(g.reason, g.rows) for g in prepared.dropped] == [("column 'c' is empty", (41, 42, 43))]
    marker = json.loads((settings.cache_dir / "tasks" / definition_digest(task) / "prepared.json").read_text())
    assert marker["dropped"] == [{"reason": "column 'c' is empty", "rows": [41, 42, 43]}] and marker["dropped_rows"] == 3
    assert TaskPreparer(settings).prepare(task) == prepared  # read back from the marker by a new process
    assert prepared.train_file.is_file() and prepared.hidden_file.is_relative_to(settings.hidden_dir)
    assert not [p for p in settings.data_dir.rglob(".staging-*")]


def test_a_leftover_without_its_marker_is_replaced(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    task = dpo_task(tmp_path, empty_rows=0)
    for leftover in (settings.cache_dir / "tasks" / definition_digest(task), settings.hidden_dir / definition_digest(task)):
        leftover.mkdir(parents=True)
        (leftover / "junk").write_text("half-written")
    prepared = TaskPreparer(settings).prepare(task)
    assert not (prepared.hidden_file.parent / "junk").exists() and not (prepared.train_file.parent / "junk").exists()


def test_an_old_marker_without_dropped_rows_still_reads():
    record = {"train_file": "/t/train.jsonl", "dataset_spec": {}, "hidden_file": "/h/hidden.jsonl", "train_rows": 9, "hidden_rows": 1}
    assert PreparedTask.from_json(record) == PreparedTask(Path("/t/train.jsonl"), {}, Path("/h/hidden.jsonl"), 9, 1)


class FailingBackend:
    """A backend whose every run fails at once: enough to see what the executor reports."""

    def run(self, job):
        job.log_dir.mkdir(parents=True, exist_ok=True)
        return RunResult(RunStatus.FAILED, 1, 0.0, 1.0, job.log_dir / "stdout.log", job.log_dir / "stderr.log", "exit 1")

    def close(self):
        pass


def test_the_run_report_carries_the_prepared_record_for_the_task_row(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", data=DataRules(max_dropped_fraction=0.2))
    (tmp_path / "model").mkdir()
    checkout_path(settings, COMMIT).mkdir(parents=True)  # a registered checkout without a manifest
    executor = SandboxedExecutor(settings, FailingBackend(), gpus=[])
    competitor = CompetitorInfo("c", "repo", COMMIT, EMPTY_TREE, "train.py")  # a run checks its checkout's tree
    report = executor.run_task(competitor, dpo_task(tmp_path, empty_rows=5), tmp_path / "run", "run-1")
    assert report.status is RunStatus.FAILED
    record = json.loads(json.dumps(report.prepared_paths))  # what the orchestrator stores on the task row
    assert record["dropped"] == [{"reason": "column 'c' is empty", "rows": [41, 42, 43, 44, 45]}] and record["dropped_rows"] == 5
    assert Path(record["hidden_file"]).is_file() and record["train_rows"] + record["hidden_rows"] == 40


def test_task_json_never_gives_the_script_a_host_path(tmp_path):
    """audit11s probe: /inputs/task.json named the model by its absolute path on the platform's machine.
    A local folder is named where the script finds it, a built-in by its ``trainarena:`` name, a Hub id as
    it is."""
    from trainarena.tasks.builtin_assets import model_name_for_script

    settings = Settings(data_dir=tmp_path / "data")
    (tmp_path / "model").mkdir()
    checkout_path(settings, COMMIT).mkdir(parents=True)
    competitor = CompetitorInfo("c", "repo", COMMIT, EMPTY_TREE, "train.py")
    SandboxedExecutor(settings, FailingBackend(), gpus=[]).run_task(competitor, dpo_task(tmp_path, empty_rows=0), tmp_path / "run", "run-1")
    (task_json,) = (tmp_path / "run").rglob("inputs/task.json")
    text = task_json.read_text()
    assert json.loads(text)["base_model_name"] == "/inputs/model" and str(tmp_path) not in text

    builtin = settings.assets_dir / "text" / "tiny_llama"
    builtin.mkdir(parents=True)
    assert model_name_for_script(str(builtin), settings.assets_dir, "/inputs/model") == "trainarena:tiny_llama"
    assert model_name_for_script("org/model", settings.assets_dir, "/inputs/model") == "org/model"
    assert model_name_for_script(str(tmp_path / "elsewhere" / "tiny_llama"), settings.assets_dir, "/inputs/model") == "/inputs/model"
