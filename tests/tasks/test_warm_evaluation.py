"""The warm evaluation worker scores exactly as a cold worker does (bit for bit, per example too),
recovers from a crashed or hung worker, and is replaced after its quota of evaluations or when the base
model changes."""

from __future__ import annotations

import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from trainarena.contract import Direction, TaskType
from trainarena.settings import DataRules, ImageRules, Settings
from trainarena.tasks import TaskDefinition, get_task_type
from trainarena.tasks.child_evaluation import evaluate_in_child, evaluation_scope
from trainarena.tasks.warm_evaluation import WarmEvaluator

RULES = DataRules(eval_cpu_threads=1)


def _task(assets, task_type: str) -> TaskDefinition:
    dataset = assets.datasets_of(task_type)[0]
    return TaskDefinition(dataset.name, TaskType(task_type), str(assets.tiny_llama), dataset.dataset_spec(), 10)


@pytest.fixture(scope="module")
def nudged_model(assets, tmp_path_factory) -> Path:
    """The base model with its weights moved a little: an artifact that scores unlike the base model."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(3)
    model = AutoModelForCausalLM.from_pretrained(assets.tiny_llama, use_safetensors=True)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.02 * torch.randn_like(parameter))
    folder = tmp_path_factory.mktemp("nudged")
    model.save_pretrained(folder)
    return folder


def _evaluate(task: TaskDefinition, prepared, artifact: Path, runner: WarmEvaluator | None):
    with evaluation_scope(runner) as times:
        evaluation = get_task_type(task.task_type).evaluate(task, prepared, artifact, Settings(data=RULES))
    return evaluation, times


@pytest.mark.parametrize("task_type", ["instruct", "dpo", "grpo"])
def test_a_warm_worker_scores_bit_for_bit_as_a_cold_one(assets, nudged_model, tmp_path, task_type) -> None:
    task = _task(assets, task_type)
    prepared = get_task_type(task_type).prepare(task, tmp_path / "train", tmp_path / "hidden", Settings())
    # The cold scores come from a thread of their own while this one drives the warm worker: each
    # evaluation is a single-threaded child (eval_cpu_threads=1), so on two cores the two chains overlap
    # instead of adding up, and neither sees the other's worker (each thread has its own scope).
    with ThreadPoolExecutor(1) as cold_side:
        cold_future = cold_side.submit(lambda: [_evaluate(task, prepared, artifact, None)[0] for artifact in (nudged_model, assets.tiny_llama)])
        warm_worker = WarmEvaluator(max_evaluations=10)
        try:
            # The second and third evaluations find the worker warm, after scoring other weights.
            warm = [_evaluate(task, prepared, artifact, warm_worker) for artifact in (assets.tiny_llama, nudged_model, assets.tiny_llama)]
        finally:
            warm_worker.close()
        cold = cold_future.result()
    assert warm_worker.started == 1
    assert cold[0].score != cold[1].score  # the two artifacts are told apart
    for (evaluation, _times), expected in zip(warm, (cold[1], cold[0], cold[1]), strict=True):
        assert evaluation.failure is None and evaluation.score == expected.score
        assert evaluation.per_example == expected.per_example and evaluation.lead_unit == expected.lead_unit
    # Start-up (Python and the libraries) is paid by the first evaluation only.
    assert warm[1][1].startup < warm[0][1].startup / 2 and warm[1][1].compute > 0


def _bad_request(base_model: str) -> dict:
    """An instruct request that fails fast (no such base model): served, without any model to load."""
    return {"hidden_file": "/nonexistent/hidden.jsonl", "dataset_spec": {}, "artifact_dir": "/nonexistent/artifact",
            "base_model": base_model}


def _failure(runner: WarmEvaluator, request: dict, rules: DataRules = RULES) -> str | None:
    with evaluation_scope(runner):
        return evaluate_in_child(TaskType.INSTRUCT, Direction.LOWER, request, rules).failure


def _mine(runner: WarmEvaluator):
    """This thread's worker."""
    return runner._workers[threading.get_ident()][0]


def _worker_pid(runner: WarmEvaluator) -> int:
    guard = _mine(runner)._process.pid  # the guard; the evaluation worker is its only child
    children = Path(f"/proc/{guard}/task/{guard}/children").read_text().split()
    return int(children[0])


def test_the_worker_is_replaced_after_its_quota_and_when_the_base_model_changes() -> None:
    runner = WarmEvaluator(max_evaluations=2)
    try:
        for base in ("/nonexistent/a", "/nonexistent/a", "/nonexistent/a", "/nonexistent/b"):
            assert _failure(runner, _bad_request(base))
    finally:
        runner.close()
    assert runner.started == 3  # a, a | a | b


def test_the_workers_of_threads_that_ended_are_reaped_by_the_next_evaluation() -> None:
    # Jobs evaluate on a thread each, outside any drive: their workers must not pile up in a service.
    runner = WarmEvaluator(max_evaluations=10)
    try:
        for _ in range(3):
            job = threading.Thread(target=_failure, args=(runner, _bad_request("/nonexistent/a")))
            job.start()
            job.join()
        assert len(runner._workers) == 1  # each new thread's evaluation reaped the one before
        assert _failure(runner, _bad_request("/nonexistent/a"))
        assert list(runner._workers) == [threading.get_ident()]
        # A new thread may get the ident of one that ended, and with it that thread's idle worker
        # (harmless), so three job threads start one to three workers; this thread then starts its own.
        assert 2 <= runner.started <= 4
    finally:
        runner.close()


def test_a_crashed_worker_is_replaced_and_the_evaluation_retried() -> None:
    runner = WarmEvaluator(max_evaluations=10)
    try:
        first = _failure(runner, _bad_request("/nonexistent/a"))
        os.kill(_worker_pid(runner), signal.SIGKILL)
        assert _failure(runner, _bad_request("/nonexistent/a")) == first  # answered by a fresh worker
        assert runner.started == 2
    finally:
        runner.close()


@pytest.mark.slow  # the limit must leave a cold start (Python, torch, transformers) time on a loaded machine
def test_a_hung_evaluation_fails_at_its_limit_and_the_next_one_gets_a_fresh_worker(tmp_path) -> None:
    hidden = tmp_path / "captions.jsonl"
    os.mkfifo(hidden)  # the image evaluator reads it first, and reading it blocks: the evaluation hangs
    hung = {"hidden_file": str(hidden), "artifact_dir": str(tmp_path / "artifact"), "base_model": "/nonexistent/a",
            "image_rules": ImageRules().model_dump(mode="json")}
    rules = DataRules(eval_cpu_threads=1, eval_timeout_seconds=20.0)
    runner = WarmEvaluator(max_evaluations=10)
    try:
        assert _failure(runner, _bad_request("/nonexistent/a"), rules)  # the worker is warm
        hung_scratch = _mine(runner).scratch
        with evaluation_scope(runner):
            failed = evaluate_in_child(TaskType.IMAGE, Direction.LOWER, hung, rules)
        assert "exceeded its 20 s limit" in failed.failure
        assert not hung_scratch.exists()  # the stopped worker's folder went with it
        assert _failure(runner, _bad_request("/nonexistent/a"), rules)
        assert runner.started == 2  # a fresh worker answered
        fresh_scratch = _mine(runner).scratch
    finally:
        runner.close()
    assert not fresh_scratch.exists()


def test_the_request_reaches_the_worker_on_stdin_only(tmp_path) -> None:
    """Nothing the warm worker is told (it names the hidden split) lies in its scratch folder."""
    runner = WarmEvaluator(max_evaluations=10)
    try:
        _failure(runner, _bad_request("/nonexistent/secret-place"))
        files = [p for p in _mine(runner).scratch.rglob("*") if p.is_file()]
        assert not any("secret-place" in p.read_text(errors="replace") for p in files), files
    finally:
        runner.close()


def test_a_warmed_up_worker_serves_the_first_evaluation() -> None:
    runner = WarmEvaluator(max_evaluations=10)
    try:
        assert runner.warm_up("instruct", "/nonexistent/a", RULES)
        with evaluation_scope(runner) as times:
            assert evaluate_in_child(TaskType.INSTRUCT, Direction.LOWER, _bad_request("/nonexistent/a"), RULES).failure
        assert runner.started == 1 and times.startup < 1.0  # no Python or library start left to pay
    finally:
        runner.close()
