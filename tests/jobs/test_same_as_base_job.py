"""A job whose script saved the base model's weights unchanged (the house DPO script when its held-out
scaling chose 0) and said so in /output/trainarena_outcome.json (docs/contract.md): the model card,
GET /v1/models/{id}, GET /v1/jobs/{id}, the job's finished event and `jobs show` (text and --json) say
that training found no improvement and the delivered weights equal the base model's. Before, the
customer got the base model's weights with nothing saying so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from job_support import FakeExecutor, fast_settings, queued_job, uploaded, wait_for
from typer.testing import CliRunner

from trainarena.api import create_app
from trainarena.cli import app
from trainarena.contract import OUTCOME_FILE, OUTCOME_WHY_MAX, same_as_base_reason
from trainarena.jobs import JobWorker
from trainarena.registry.card import same_as_base_note
from trainarena.runs import RunReport
from trainarena.store import open_store
from trainarena.store.api_keys import create_key
from trainarena.store.models import ApiRole, Job, JobStatus

WHY = "on 8 held-out pairs no scale of the trained weights had a DPO loss below the base model's (0.6931; as trained 0.7012)"


class BaseKeepingExecutor(FakeExecutor):
    """Trains as FakeExecutor does, and leaves the outcome file the house script writes when it keeps the base."""

    def run_task(self, competitor, task, run_dir: Path, run_name: str) -> RunReport:  # noqa: ANN001
        report = super().run_task(competitor, task, run_dir, run_name)
        (run_dir / "output" / OUTCOME_FILE).write_text(json.dumps({"same_as_base": True, "why": WHY}))
        return report


def test_a_job_whose_script_kept_the_base_weights_says_so_everywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = fast_settings(tmp_path / "data")
    note = same_as_base_note(WHY)
    with open_store(settings) as store:
        with store.transaction() as session:
            key = create_key(session, "acme", ApiRole.CUSTOMER)
        job_id = queued_job(settings, store, key.row.id, uploaded(settings, store, key.row.id), task_type="instruct")
        worker = JobWorker(settings, store=store, executor=BaseKeepingExecutor())
        worker.start()
        try:
            wait_for(lambda: _status(store, job_id) in JobStatus.FINISHED, what="the job's end")
        finally:
            worker.stop()
        with TestClient(create_app(settings, store=store)) as client:
            headers = {"Authorization": f"Bearer {key.secret}"}
            job = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
            model = client.get(f"/v1/models/{job['model_id']}", headers=headers).json()
    assert job["status"] == "succeeded" and job["same_as_base"] == note
    assert note.startswith("training found no improvement over the base model, so the delivered weights equal the base model's")
    assert model["same_as_base"] == note
    card = (Path(settings.registry_dir) / job["model_id"] / "README.md").read_text()
    assert f"- Same as the base model: {note}" in card
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(settings.data_dir))
    shown = json.loads(CliRunner().invoke(app, ["jobs", "show", job_id, "--json"]).stdout)
    assert shown["same_as_base"] == note and shown["events"][-1]["message"].endswith(f"; {note}")
    words = " ".join(CliRunner().invoke(app, ["jobs", "show", job_id], env={"COLUMNS": "80"}).stdout.split())
    assert f"same as base {note}" in words
    assert f"same as base {note}" in " ".join(CliRunner().invoke(app, ["models", "show", job["model_id"]]).stdout.split())


def _status(store, job_id: str) -> str:  # noqa: ANN001
    with store.session() as session:
        return session.get_one(Job, job_id).status


@pytest.mark.parametrize(
    ("content", "read"),
    [
        ({"same_as_base": True, "why": "  no gain\non held-out pairs "}, "no gain on held-out pairs"),
        ({"same_as_base": False, "why": "trained"}, None),
        ({"same_as_base": "yes", "why": "a string is no true"}, None),
        ({"same_as_base": True}, None),
        ({"same_as_base": True, "why": "x" * (OUTCOME_WHY_MAX + 1)}, None),
        ({"same_as_base": True, "why": "bell \x07"}, None),
        (["same_as_base"], None),
        ("not json {", None),
        (None, None),  # no file
    ],
)
def test_the_outcome_file_is_read_only_as_the_contract_describes_it(tmp_path: Path, content: object, read: str | None) -> None:
    if content is not None:
        (tmp_path / OUTCOME_FILE).write_text(content if isinstance(content, str) else json.dumps(content))
    assert same_as_base_reason(tmp_path) == read
