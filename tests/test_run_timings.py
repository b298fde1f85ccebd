"""The pipeline records how long each step of a run took, in the report and in the run folder's
timings.json: the script's own time (the sandbox's clock) apart from everything around it."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from trainarena.contract import RunStatus, TaskType
from trainarena.execution.base import RunResult, SandboxJob
from trainarena.pipeline import SandboxedExecutor
from trainarena.runs import TIMINGS_FILE, CompetitorInfo, RunReport
from trainarena.settings import DataRules, Settings
from trainarena.tasks.base import TaskDefinition

SCRIPT_SECONDS = 0.3


class CopyBaseModel:
    """A backend whose 'script' sleeps, then writes the base model as its artifact."""

    name = "fake"

    def __init__(self, model: Path) -> None:
        self.model = model

    def run(self, job: SandboxJob) -> RunResult:
        started = time.time()
        time.sleep(SCRIPT_SECONDS)
        shutil.copytree(self.model, job.output_dir, dirs_exist_ok=True)
        job.log_dir.mkdir(parents=True, exist_ok=True)
        for name in ("stdout.log", "stderr.log"):
            (job.log_dir / name).write_text("")
        return RunResult(RunStatus.SUCCEEDED, 0, started, time.time(), job.log_dir / "stdout.log", job.log_dir / "stderr.log")

    def close(self) -> None:
        pass


def _run_of_copied_base_model(assets, tmp_path: Path) -> tuple[Settings, TaskDefinition, CompetitorInfo]:
    settings = Settings(data_dir=tmp_path / "data", data=DataRules(eval_cpu_threads=1))
    task = TaskDefinition("units", TaskType.INSTRUCT, str(assets.tiny_llama),
                          {"source": str(assets.datasets["units"]), **assets.dataset_fields["units"]}, 10, 1)
    (tmp_path / "script").mkdir()
    return settings, task, CompetitorInfo("fake", "-", "-", "-", "train.py", submission_dir=tmp_path / "script")


def test_each_step_of_a_run_is_timed_in_its_report_and_folder(assets, tmp_path: Path) -> None:
    settings, task, competitor = _run_of_copied_base_model(assets, tmp_path)
    executor = SandboxedExecutor(settings, CopyBaseModel(assets.tiny_llama), gpus=[])
    try:
        trained = executor.train_task(competitor, task, tmp_path / "run", "timed")
        assert not isinstance(trained, RunReport)  # the script is done; the artifact waits for its score
        assert not (tmp_path / "run" / TIMINGS_FILE).exists()  # written with the final report
        report = trained.finish()
    finally:
        executor.close()
    assert report.status == RunStatus.SUCCEEDED and report.evaluation.score is not None
    steps = {"prepare", "sandbox", "script", "artifact_check", "eval_startup", "eval_compute"}
    assert set(report.timings) == steps
    assert report.timings["script"] >= SCRIPT_SECONDS and report.timings["eval_compute"] > 0
    assert report.timings["script"] == report.wall_seconds  # the sandbox's own clock, nothing around it
    assert json.loads((tmp_path / "run" / TIMINGS_FILE).read_text()) == report.timings


def test_on_a_gpu_host_the_run_is_scored_before_its_slot_is_free(assets, tmp_path: Path) -> None:
    # The evaluator takes a GPU: scored while the next script trains, it would share that run's GPU.
    settings, task, competitor = _run_of_copied_base_model(assets, tmp_path)
    executor = SandboxedExecutor(settings, CopyBaseModel(assets.tiny_llama), gpus=[0])
    try:
        report = executor.train_task(competitor, task, tmp_path / "run", "on-gpu")
    finally:
        executor.close()
    assert isinstance(report, RunReport) and report.status == RunStatus.SUCCEEDED and report.evaluation.score is not None
