"""Every text task type's stored per-example values add up to its stored score, exactly: evaluated in
the child process (the real path, JSON between the processes), stored in the SQL store, read back.
The image type is checked in test_image_eval.py."""

from __future__ import annotations

import doctest
import json

import pytest

from trainarena.attempts import store_report
from trainarena.contract import Direction, RunStatus, TaskType
from trainarena.engine import scores
from trainarena.engine.scores import PER_EXAMPLE_FORM, score_of
from trainarena.runs import RunReport
from trainarena.settings import DataRules, Settings
from trainarena.store import open_store
from trainarena.store.adhoc import start_adhoc_run
from trainarena.store.models import EvaluationRow, Run, RunOrigin
from trainarena.tasks import TaskDefinition, get_task_type
from trainarena.tasks import result as task_result
from trainarena.tasks.dpo import evaluation as dpo_evaluation
from trainarena.tasks.grpo import evaluation as grpo_evaluation

TEXT_TYPES = (TaskType.INSTRUCT, TaskType.CHAT, TaskType.DPO, TaskType.GRPO)
RULES = DataRules(eval_cpu_threads=1, grpo_eval_prompts=8, grpo_eval_max_new_tokens=8)


@pytest.fixture(scope="module")
def trained(assets, tmp_path_factory):
    """The tiny model with every weight nudged: an artifact unlike the base model (a DPO loss other
    than log 2 on every row, a GRPO KL other than 0), so the per-example values differ."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(assets.tiny_llama)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.02)
    directory = tmp_path_factory.mktemp("nudged") / "model"
    model.save_pretrained(directory)
    return directory


def _task(assets, task_type: TaskType) -> TaskDefinition:
    if task_type is TaskType.INSTRUCT:
        spec = {"source": str(assets.datasets["units"]), **assets.dataset_fields["units"]}
    else:
        (data,) = [d for d in assets.datasets_of(task_type.value) if task_type is not TaskType.DPO or d.name == "preference_arithmetic"]
        spec = data.dataset_spec()
    return TaskDefinition(task_type.value, task_type, str(assets.tiny_llama), spec, 10)


def _stored(tmp_path, evaluation) -> EvaluationRow:
    """The evaluation stored as every run's is (``attempts.store_report``), read back in a new session."""
    with open_store(Settings(data_dir=tmp_path)) as store:
        with store.transaction() as session:
            run_id = start_adhoc_run(session, origin=RunOrigin.BASE_MODEL, definition={}, digest="d").id
            store_report(session, run_id, 1, RunReport(RunStatus.SUCCEEDED, 1.0, 2.0, evaluation=evaluation))
        with store.session() as session:
            row = session.get_one(Run, run_id).evaluation
            session.expunge(row)
            return row


@pytest.mark.parametrize("task_type", TEXT_TYPES, ids=lambda t: t.value)
def test_stored_per_example_values_add_up_to_the_stored_score(assets, trained, tmp_path, task_type):
    task = _task(assets, task_type)
    plugin = get_task_type(task_type)
    prepared = plugin.prepare(task, tmp_path / "train", tmp_path / "hidden", Settings(data=RULES))
    evaluation = plugin.evaluate(task, prepared, trained, Settings(data=RULES))
    assert evaluation.failure is None and evaluation.score is not None, evaluation.details
    row = _stored(tmp_path, evaluation)
    assert row.details["per_example_form"] == PER_EXAMPLE_FORM
    assert row.score == score_of(row.per_example) == evaluation.score  # the combination, to the bit
    assert len(row.per_example) == evaluation.details["examples"] > 1
    assert len(set(row.per_example)) > 1  # real per-example values, not one number repeated
    if task_type in (TaskType.INSTRUCT, TaskType.CHAT):  # a share is a summed loss over the split's tokens
        tokens = evaluation.details["tokens"]
        assert all(share * tokens > 0 for share in row.per_example)
    assert Direction(row.direction) is plugin.direction


def test_the_evaluator_pins_and_records_its_cpu_threads(tmp_path):
    """A CPU score is bit-for-bit repeatable only at one thread count: the default pins it, the worker
    applies it and records it with every result (a failed one too)."""
    import subprocess
    import sys

    pinned = DataRules().eval_cpu_threads
    assert pinned > 0
    request = {"task_type": "instruct", "hidden_file": str(tmp_path / "missing.jsonl"), "dataset_spec": {},
               "artifact_dir": str(tmp_path), "base_model": str(tmp_path),
               "rules": DataRules(eval_cpu_threads=pinned + 1, eval_memory_limit_mb=0).model_dump()}  # fmt: skip
    result_path = tmp_path / "result.json"
    subprocess.run([sys.executable, "-m", "trainarena.tasks.evaluate_worker", str(result_path)],
                   input=json.dumps(request), text=True, check=True, capture_output=True)  # fmt: skip
    result = json.loads(result_path.read_text())
    assert result["score"] is None and result["details"]["cpu_threads"] == pinned + 1


def test_the_examples_of_the_combination_hold():
    for module in (scores, task_result, dpo_evaluation, grpo_evaluation):
        assert doctest.testmod(module).failed == 0
