"""What the pipeline does with a run's output once its script has ended: modes settled before the
check, a hostile tree failing only its own run, the output of every run that is not scored deleted
(its logs kept), and the runs folder closed to other local users."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from deep_trees import nest
from trainarena import pipeline
from trainarena.contract import RunStatus, TaskType
from trainarena.execution import disk
from trainarena.execution.base import RunResult, SandboxJob
from trainarena.pipeline import SandboxedExecutor
from trainarena.runs import CompetitorInfo, DiskFull, PendingEvaluation, RunNotStarted, RunReport, clear_stale_folder
from trainarena.settings import DataRules, Settings
from trainarena.tasks.base import TaskDefinition

Script = Callable[[Path], RunStatus]  # what the "script" does to /output; the status it ends with


class ScriptedBackend:
    """A backend whose script is a Python function over the host's output folder."""

    name = "scripted"

    def __init__(self, script: Script) -> None:
        self.script = script

    def run(self, job: SandboxJob) -> RunResult:
        started = time.time()
        status = self.script(job.output_dir)
        job.log_dir.mkdir(parents=True, exist_ok=True)
        for name in ("stdout.log", "stderr.log"):
            (job.log_dir / name).write_text("the script's words\n")
        reason = None if status == RunStatus.SUCCEEDED else "wrote more than 100 MB to /output (the run's cap)"
        return RunResult(status, 0, started, time.time(), job.log_dir / "stdout.log", job.log_dir / "stderr.log",
                         failure_reason=reason)

    def close(self) -> None:
        pass


@pytest.fixture
def train(assets, tmp_path: Path) -> Callable[[Script], tuple[RunReport | PendingEvaluation, Path, Settings]]:
    settings = Settings(data_dir=tmp_path / "data", data=DataRules(eval_cpu_threads=1))
    task = TaskDefinition("units", TaskType.INSTRUCT, str(assets.tiny_llama),
                          {"source": str(assets.datasets["units"]), **assets.dataset_fields["units"]}, 10, 1)
    (tmp_path / "script").mkdir()
    competitor = CompetitorInfo("hostile", "-", "-", "-", "train.py", submission_dir=tmp_path / "script")

    def run(script: Script) -> tuple[RunReport | PendingEvaluation, Path, Settings]:
        run_dir = settings.work_dir / "adhoc" / "run-1"
        executor = SandboxedExecutor(settings, ScriptedBackend(script), gpus=[])
        try:
            return executor.train_task(competitor, task, run_dir, "run-1"), run_dir, settings
        finally:
            executor.close()

    def with_model(script: Script) -> Script:
        def both(output: Path) -> RunStatus:
            shutil.copytree(assets.tiny_llama, output, dirs_exist_ok=True)
            return script(output)
        return both

    run.with_model = with_model  # type: ignore[attr-defined]
    return run


def test_a_setuid_file_in_a_valid_artifact_is_no_longer_setuid_when_it_is_digested(train) -> None:
    def probe(output: Path) -> RunStatus:
        shutil.copyfile("/usr/bin/id", output / "suid_id")
        os.chmod(output / "suid_id", 0o4755)
        (output / "ww").mkdir()
        os.chmod(output / "ww", 0o777)
        return RunStatus.SUCCEEDED

    trained, run_dir, settings = train(train.with_model(probe))
    assert not isinstance(trained, RunReport)  # pending its evaluation: nothing it can repair is refused
    output = run_dir / "output"
    assert stat.S_IMODE((output / "suid_id").stat().st_mode) == 0o755
    assert stat.S_IMODE((output / "ww").stat().st_mode) == 0o755
    assert stat.S_IMODE(settings.work_dir.stat().st_mode) == 0o700  # other local users reach no run folder


def test_1500_nested_folders_fail_their_run_as_invalid_and_are_deleted(train) -> None:
    def deep(output: Path) -> RunStatus:
        nest(output, 1500)
        return RunStatus.SUCCEEDED

    report, run_dir, _ = train(train.with_model(deep))  # no RecursionError reaches the caller
    assert isinstance(report, RunReport) and report.status == RunStatus.INVALID
    assert report.failure_reason == "artifact: the output a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a " \
                                    "is nested deeper than 32 folders (the platform's cap)"
    assert not (run_dir / "output").exists()
    assert (run_dir / "logs" / "stderr.log").read_text() == "the script's words\n"


def test_the_output_of_a_run_over_its_cap_is_deleted_and_its_logs_kept(train) -> None:
    def fill(output: Path) -> RunStatus:
        (output / "f").mkdir()
        for i in range(3):
            (output / "f" / str(i)).write_bytes(b"x" * 4096)
        return RunStatus.FAILED

    report, run_dir, _ = train(fill)
    assert isinstance(report, RunReport) and report.status == RunStatus.FAILED
    assert report.failure_reason == "wrote more than 100 MB to /output (the run's cap)"
    assert not (run_dir / "output").exists()
    assert (run_dir / "logs" / "stdout.log").is_file() and (run_dir / "inputs" / "task.json").is_file()


def test_a_refused_artifact_is_deleted(train) -> None:
    def pickle_only(output: Path) -> RunStatus:
        (output / "model.pt").write_bytes(b"not safetensors")
        return RunStatus.SUCCEEDED

    report, run_dir, _ = train(pickle_only)
    assert isinstance(report, RunReport) and report.status == RunStatus.INVALID
    assert "pickle-based weights" in (report.failure_reason or "")
    assert not (run_dir / "output").exists() and (run_dir / "logs").is_dir()


def test_a_stale_run_folder_nested_1500_deep_is_cleared(tmp_path: Path) -> None:
    run_dir = tmp_path / "run-1" / "attempt-1"
    (run_dir / "output").mkdir(parents=True)
    nest(run_dir / "output", 1500)
    clear_stale_folder(run_dir)
    assert not run_dir.exists() and (tmp_path / "run-1").is_dir()


def _save_failing(output: Path) -> RunStatus:
    (output / "model.safetensors").write_bytes(b"x" * 4096)  # cut short: the disk had no room for the rest
    return RunStatus.FAILED


def test_a_run_failed_on_a_full_data_disk_is_the_platforms_failure(train, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(disk, "free_bytes", lambda _path: 3 * disk.MB // 2)
    with pytest.raises(DiskFull, match=r"run run-1 not counted: the data directory's disk is full: /\S* has 1\.5 MB "
                                        r"free \(a run failed writing its output there\); free space and run again"):
        train(_save_failing)


def test_a_run_failed_with_room_left_on_the_disk_is_the_competitors(train, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(disk, "free_bytes", lambda _path: disk.FULL_BELOW_BYTES)
    report, _, _ = train(_save_failing)
    assert isinstance(report, RunReport) and report.status == RunStatus.FAILED


def test_a_full_disk_filled_by_the_run_over_its_cap_is_the_competitors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    output = tmp_path / "output"
    output.mkdir()
    (output / "big").write_bytes(b"x" * 3 * disk.MB)
    monkeypatch.setattr(disk, "free_bytes", lambda _path: 0)
    assert disk.full_disk_reason(disk.DiskCap("/output", output, 2 * disk.MB)) is None
    assert "disk is full" in (disk.full_disk_reason(disk.DiskCap("/output", output, 4 * disk.MB)) or "")


def test_a_failure_staging_the_inputs_stops_with_one_line_naming_the_path(train, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_room(source: Path, destination: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(source / "model.safetensors"),
                      None, str(destination / "model.safetensors"))

    monkeypatch.setattr(pipeline, "link_tree", no_room)
    monkeypatch.setattr(disk, "free_bytes", lambda _path: 0)
    with pytest.raises(RunNotStarted) as stopped:
        train(_save_failing)
    said = str(stopped.value)
    assert "\n" not in said and said.startswith("could not prepare the inputs of run run-1: ")
    assert "inputs/model/model.safetensors: No space left on device; the data directory's disk is full" in said
    assert said.endswith("has 0.0 MB free; free space and run again")
