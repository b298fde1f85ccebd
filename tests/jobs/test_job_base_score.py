"""A job's score beside the untrained base model's on the same validation rows. Before, a job reported a
bare number (an eval loss of 4.448) with nothing to read it against. A job with validation rows now has
its base model scored by the same evaluator on the same held-out rows, after its run (outside the
script's budget), and the job (GET /v1/jobs/{id}, `jobs show --json`), its model (GET /v1/models/{id},
its card) and its `finished` event say the base model's score and how much better (or worse) the
trained model is; a job without validation rows, and one whose base evaluation failed, say why there
is no base score, and the job keeps its own result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from job_support import FakeExecutor, fast_settings, finished_job
from sqlalchemy import select
from typer.testing import CliRunner

from trainarena.cli import app
from trainarena.contract import RunStatus
from trainarena.execution.bwrap import BwrapBackend
from trainarena.jobs.base_score import BASE_EVALUATION_FAILED, NO_VALIDATION_ROWS
from trainarena.pipeline import SandboxedExecutor
from trainarena.registry import not_compared
from trainarena.runs import RunReport
from trainarena.settings import DataRules, Settings
from trainarena.store import open_store
from trainarena.store.models import JobEvent
from trainarena.tasks.base import TaskDefinition

COMPARED = ("base_score", "improvement", "base_comparison")


def _finished_event(settings: Settings, job_id: str) -> JobEvent:
    with open_store(settings) as store, store.session() as session:
        event = session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id.desc())).first()
        assert event is not None and event.kind == "finished"
        session.expunge(event)
        return event


def _says_the_same_everywhere(settings: Settings, job: dict, model: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """The job, its model, its finished event and `jobs show --json` carry the same comparison."""
    compared = {field: job[field] for field in COMPARED}
    assert {field: model[field] for field in COMPARED} == compared
    event = _finished_event(settings, job["id"])
    assert {field: event.data[field] for field in COMPARED} == compared
    assert event.message.endswith(f"; {job['base_comparison']}")
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(settings.data_dir))
    shown = json.loads(CliRunner().invoke(app, ["jobs", "show", job["id"], "--json"]).stdout)
    assert {field: shown[field] for field in COMPARED} == compared


@pytest.mark.parametrize(
    ("base_score", "improvement", "said"),
    [
        (1.5, 0.25, "better than the untrained base model by 0.25 (score 1.25 against the untrained base model's 1.5 on the "
                    "same validation rows, lower is better)"),
        (1.0, -0.25, "worse than the untrained base model by 0.25 (score 1.25 against the untrained base model's 1 on the "
                     "same validation rows, lower is better): training made it worse on these rows"),
    ],
)
def test_an_instruct_job_with_validation_rows_reports_its_base_models_score(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                            base_score: float, improvement: float,
                                                                            said: str) -> None:  # fmt: skip
    settings = fast_settings(tmp_path / "data")
    executor = FakeExecutor(base_score=base_score)
    job, model = finished_job(settings, executor, validation_share=0.2)
    assert job["status"] == "succeeded" and job["score"] == 1.25
    assert job["base_score"] == base_score and job["improvement"] == pytest.approx(improvement)
    assert job["base_comparison"] == said
    # The base model is scored once, on the task the job trained on (its held-out rows), after its run.
    [(_competitor, trained_task, _run_dir)] = executor.calls
    assert executor.base_calls == [trained_task]
    _says_the_same_everywhere(settings, job, model, monkeypatch)
    card = (Path(settings.registry_dir) / job["model_id"] / "README.md").read_text()
    assert f"- Against the base model: {job['base_comparison']}" in card


def test_a_job_without_validation_rows_has_no_base_score_and_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = fast_settings(tmp_path / "data")
    executor = FakeExecutor()
    job, model = finished_job(settings, executor)
    assert job["status"] == "succeeded" and job["score"] is None
    assert job["base_score"] is None and job["improvement"] is None
    assert job["base_comparison"] == not_compared(NO_VALIDATION_ROWS)
    assert executor.base_calls == []  # nothing held out: nothing to score the base model on
    _says_the_same_everywhere(settings, job, model, monkeypatch)


class BrokenBaseEvaluation(FakeExecutor):
    """Trains as FakeExecutor does; its base model's evaluation raises, or reports no score."""

    def __init__(self, raises: bool) -> None:
        super().__init__()
        self.raises = raises

    def evaluate_base_model(self, task: TaskDefinition) -> RunReport:
        if self.raises:
            raise RuntimeError("the evaluation worker died")
        return RunReport(RunStatus.INVALID, 0.0, 0.0, failure_reason="evaluation: out of memory")


@pytest.mark.parametrize("raises", [True, False])
def test_a_failed_base_evaluation_does_not_fail_the_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raises: bool,
                                                        caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    settings = fast_settings(tmp_path / "data")
    job, model = finished_job(settings, BrokenBaseEvaluation(raises), validation_share=0.2)
    assert job["status"] == "succeeded" and job["score"] == 1.25 and job["failure_reason"] is None
    assert job["base_score"] is None and job["improvement"] is None and job["base_comparison"] == not_compared(BASE_EVALUATION_FAILED)
    # The error (it may name a path on the server) is the server's log's, not the downloaded card's.
    assert ("the evaluation worker died" if raises else "out of memory") in caplog.text
    _says_the_same_everywhere(settings, job, model, monkeypatch)


class RealBaseEvaluation(FakeExecutor):
    """Trains as FakeExecutor does; scores the base model as the pipeline does (the tiny built-in model)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.pipeline = SandboxedExecutor(settings, BwrapBackend(settings.sandbox), gpus=[])
        self.reports: list[RunReport] = []

    def evaluate_base_model(self, task: TaskDefinition) -> RunReport:
        self.reports.append(self.pipeline.evaluate_base_model(task))
        return self.reports[-1]


def test_the_base_model_is_scored_on_the_rows_the_job_held_out(assets, tmp_path: Path) -> None:  # noqa: ANN001
    """Through the pipeline's own base-model evaluation: it finds the job's preparation (a fifth of 30
    rows held out), not a split of its own, and scores the untrained tiny model on those 6 rows."""
    settings = fast_settings(tmp_path / "data", base_models=(str(assets.tiny_llama),))
    settings = settings.model_copy(update={"data": DataRules(eval_cpu_threads=1, eval_warm_worker=False)})
    executor = RealBaseEvaluation(settings)
    job, _model = finished_job(settings, executor, validation_share=0.2)
    [report] = executor.reports
    assert report.prepared_paths is not None and report.prepared_paths["hidden_rows"] == 6
    assert report.evaluation is not None and report.evaluation.score is not None
    assert job["base_score"] == report.evaluation.score
    assert job["improvement"] == pytest.approx(report.evaluation.score - 1.25)  # eval loss: lower is better
