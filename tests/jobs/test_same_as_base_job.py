"""A job whose script saved the base model's weights unchanged (the house DPO script when its held-out
scaling chose 0) and said so in /output/trainarena_outcome.json (docs/contract.md): the model card,
GET /v1/models/{id}, GET /v1/jobs/{id}, the job's finished event and `jobs show` (text and --json) say
that training found no improvement and the delivered weights equal the base model's. Before, the
customer got the base model's weights with nothing saying so. The claim is a competitor's (the champion's
script trains jobs): weights that differ from the base model's are not said to equal them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from job_support import FakeExecutor, fast_settings, finished_job
from safetensors.torch import save_file
from typer.testing import CliRunner

from sqlite_lock import write_lock_free
from trainarena.cli import app
from trainarena.contract import OUTCOME_FILE, OUTCOME_WHY_MAX, same_as_base_reason
from trainarena.registry.card import SAME_AS_BASE_REFUTED, same_as_base_note
from trainarena.runs import RunReport

WHY = "on 8 held-out pairs no scale of the trained weights had a DPO loss below the base model's (0.6931; as trained 0.7012)"


class BaseKeepingExecutor(FakeExecutor):
    """Trains as FakeExecutor does, leaves an adapter whose B matrices are ``b`` (zero: it adds nothing
    to the base model) and the outcome file the house script writes when it keeps the base."""

    def __init__(self, b: float = 0.0) -> None:
        super().__init__()
        self.b = b

    def run_task(self, competitor, task, run_dir: Path, run_name: str) -> RunReport:  # noqa: ANN001
        report = super().run_task(competitor, task, run_dir, run_name)
        lora = "base_model.model.layers.0.q_proj.lora_{}.weight"
        save_file({lora.format("A"): torch.ones(2, 4), lora.format("B"): torch.full((4, 2), self.b)},
                  str(run_dir / "output" / "adapter_model.safetensors"))  # fmt: skip
        (run_dir / "output" / OUTCOME_FILE).write_text(json.dumps({"same_as_base": True, "why": WHY}))
        return report


def test_a_job_whose_script_kept_the_base_weights_says_so_everywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = fast_settings(tmp_path / "data")
    note = same_as_base_note(WHY)
    job, model = finished_job(settings, BaseKeepingExecutor())
    job_id = job["id"]
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


def test_the_weights_are_compared_before_the_transaction_that_registers_the_model(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Comparing a full model's tensors with its base model's takes long: the job's end (its report, its
    model's row) is written in one transaction, which holds a SQLite store's write lock, so the weights
    are read before it opens; the model still records the verdict."""
    from trainarena.registry import models as registry_models

    settings = fast_settings(tmp_path / "data")
    lock_free: list[bool] = []

    def checked(*args: object) -> bool | None:
        lock_free.append(write_lock_free(settings.db_url))
        return weights_equal_base(*args)

    weights_equal_base = registry_models.weights_equal_base
    monkeypatch.setattr(registry_models, "weights_equal_base", checked)
    job, model = finished_job(settings, BaseKeepingExecutor())
    assert lock_free == [True]
    assert job["same_as_base"] == model["same_as_base"] == same_as_base_note(WHY)


def test_a_job_whose_script_claimed_the_base_weights_falsely_is_not_repeated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The champion's script (a competitor's code) says it kept the base model's weights, but its adapter
    adds to them: the customer is not told the weights equal the base model's; the card, the model's
    record, the finished event and `jobs show` say the script's claim does not hold."""
    settings = fast_settings(tmp_path / "data")
    job, model = finished_job(settings, BaseKeepingExecutor(b=0.5))
    assert job["status"] == "succeeded" and job["same_as_base"] is None
    assert model["same_as_base"] is None and model["same_as_base_refuted"] == SAME_AS_BASE_REFUTED
    card = (Path(settings.registry_dir) / job["model_id"] / "README.md").read_text()
    assert "Same as the base model" not in card and f"- Weights: {SAME_AS_BASE_REFUTED}" in card
    monkeypatch.setenv("TRAINARENA_DATA_DIR", str(settings.data_dir))
    shown = json.loads(CliRunner().invoke(app, ["jobs", "show", job["id"], "--json"]).stdout)
    assert shown["same_as_base"] is None and shown["events"][-1]["message"].endswith(f"; {SAME_AS_BASE_REFUTED}")
    assert f"weights {SAME_AS_BASE_REFUTED}" in " ".join(CliRunner().invoke(app, ["models", "show", job["model_id"]]).stdout.split())


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
        ("[" * 2000 + "]" * 2000, None),  # nested past Python's recursion limit: its RecursionError failed the job
        (None, None),  # no file
    ],
)
def test_the_outcome_file_is_read_only_as_the_contract_describes_it(tmp_path: Path, content: object, read: str | None) -> None:
    if content is not None:
        (tmp_path / OUTCOME_FILE).write_text(content if isinstance(content, str) else json.dumps(content))
    assert same_as_base_reason(tmp_path) == read
