"""`trainarena models verify` of a model registered before the registry named the artifact file each
of its files was copied from (every `artifact_path` null, no `artifact_digest`): verified with a record
it said "no file is linked". Its files are now linked to the signed record by content, without writing
anything: each to the artifact file whose signed sha256 is the one registered for it. Where none can be,
it says why and what to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner
from verify_files import RUN_ID, WEIGHTS, Saved

from trainarena.cli import app
from trainarena.records.statements import Kind, make_statement, subject

UNLINKED = "the model names no file copied from its run's artifact (registered before the registry recorded them), and "


@pytest.fixture
def saved(tmp_path: Path) -> Saved:
    return Saved(tmp_path)


def _old(model: dict) -> dict:
    """``model`` as the registry answered it before it named copies and kept the artifact digest."""
    return {**model, "artifact_digest": None, "files": [{**file, "artifact_path": None} for file in model["files"]]}


def _verify(args: list[str], exit_code: int) -> dict:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == exit_code, result.output
    return json.loads(result.stdout)


def test_an_old_models_weights_are_linked_to_the_signed_record_by_content(saved: Saved) -> None:
    args = saved.args(model=_old(saved.model))
    checked = _verify(args, 0)
    assert checked["linked_to_record"] == [WEIGHTS] and checked["linked_by_content"] is True and checked["signed_by"]
    text = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    # No saved evaluation, tree head or dataset: those claims are named as not checked.
    assert text.exit_code == 0 and text.stdout.rstrip().endswith("verified, but dataset, inclusion not checked"), text.output
    assert f"{WEIGHTS} (found by content: the model was registered before the registry named its copies)" in text.stdout
    new = _verify(saved.args(), 0)  # a model that names its copies is linked by them
    assert new["linked_to_record"] == [WEIGHTS] and new["linked_by_content"] is False

    (saved.folder / WEIGHTS).write_bytes(b"changed")
    changed = _verify(args, 1)
    assert checked["linked_to_record"] and changed["linked_to_record"] == []
    assert any(problem.startswith(f"{WEIGHTS} has sha256 ") and "the signed record" in problem for problem in changed["problems"])


def test_a_copy_under_another_name_is_found_by_its_sha256(saved: Saved) -> None:
    """An image LoRA's weights are published as pytorch_lora_weights.safetensors whatever the artifact
    named them: the record's file of the same sha256 is the one, whatever its path."""
    weights = next(file["sha256"] for file in saved.model["files"] if file["path"] == WEIGHTS)
    statement = make_statement(Kind.RUN, [subject("artifact/checkpoint/lora.safetensors", weights), subject("artifact/other", "0" * 64)],
                               {"run": {"id": RUN_ID}, "artifact_sha256": "ab" * 32})  # fmt: skip
    checked = _verify(saved.args(model=_old(saved.model), entry=saved.unsigned(statement), key=False), 0)
    assert checked["linked_to_record"] == [WEIGHTS] and checked["linked_by_content"] is True


@pytest.mark.parametrize(
    ("subjects", "why"),
    [
        ([subject("logs/stderr.log", "1" * 64)],
         "the record names no artifact file (its attempt left none: give the record of the run's last attempt)"),
        ([subject(f"artifact/{WEIGHTS}", "2" * 64)],
         "none of its files has the sha256 the record names for one of the artifact's 1 files: its weights are not that "
         "artifact's (give the record of the run's last attempt; the operator finds the artifact with "
         f"`trainarena runs show {RUN_ID}` and can compare its weights with the model's)"),
    ],
    ids=["no-artifact", "other-weights"],
)
def test_an_old_model_that_cannot_be_linked_says_why(saved: Saved, subjects: list, why: str) -> None:
    statement = make_statement(Kind.RUN, subjects, {"run": {"id": RUN_ID}, "artifact_sha256": "ab" * 32})
    checked = _verify(saved.args(model=_old(saved.model), entry=saved.unsigned(statement), key=False), 1)
    assert checked["problems"] == [UNLINKED + why] and checked["linked_to_record"] == []
