"""Parent side of evaluation: run a task type's scorer in a child process with a time limit and an
address-space cap, and turn whatever happens (success, failure reason, crash, timeout) into an
:class:`Evaluation`. The caller never sees an exception from a broken artifact.

The worker (``tasks.evaluate_worker``) runs guarded (``execution.child_process``): it gets the request,
which names the hidden split, on stdin, so the request is never on disk; it works in a private 0700
scratch folder that is also its TMPDIR (the GRPO reward sandbox's files go there too), in its own
process group. A guard process between the driver and the worker dies with the driver (parent-death
signal) and then kills the worker's group and removes the folder; so do the time limit and every
exception here. Why a guard: a SIGKILLed driver runs no cleanup, and a worker busy in native code
cannot be relied on to clean up after itself, so the one that cleans up must be a small process that
only waits. Killing the driver with SIGKILL mid-evaluation leaves no process and no scratch file.

By default each evaluation starts its own worker (a cold start: seconds of Python and library imports).
Inside :func:`evaluation_scope` with a runner (``tasks.warm_evaluation.WarmEvaluator``), the request
goes to that runner's warm worker instead; either way the scope collects how long the evaluation took
outside the evaluator (start-up) and inside it (compute), for the run's timings.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from trainarena.contract import Direction, TaskType
from trainarena.execution.child_process import GuardedRun, run_guarded
from trainarena.settings import DataRules, Settings
from trainarena.tasks.base import Evaluation, PreparedTask, TaskDefinition

STDERR_TAIL_CHARS = 1500  # how much of a crashed child's stderr is kept as the failure reason
SCRATCH_PREFIX = "trainarena-eval-"  # the worker's scratch folder, under the system temp dir
RESULT_FILE = "result.json"  # written by the worker in its scratch folder
WORKER_MODULE = "trainarena.tasks.evaluate_worker"


class EvaluationRunner(Protocol):
    def run(self, payload: str, base_model: str, rules: DataRules) -> GuardedRun:
        """Evaluate one request (JSON, ``rules`` inside) in a guarded worker; how it ended."""
        ...


@dataclass
class EvaluationTimes:
    """Seconds of the evaluations of one scope: ``startup`` outside the evaluator (process start,
    library imports, passing the request), ``compute`` inside it (loading the artifact, scoring)."""

    startup: float = 0.0
    compute: float = 0.0


_scope: ContextVar[tuple[EvaluationRunner | None, EvaluationTimes] | None] = ContextVar("evaluation_scope", default=None)


@contextlib.contextmanager
def evaluation_scope(runner: EvaluationRunner | None) -> Iterator[EvaluationTimes]:
    """Evaluations in this block (this thread) go to ``runner`` (None: a cold worker each) and add their
    times to the yielded :class:`EvaluationTimes`."""
    times = EvaluationTimes()
    token = _scope.set((runner, times))
    try:
        yield times
    finally:
        _scope.reset(token)


def worker_env() -> dict[str, str]:
    return os.environ | {"TOKENIZERS_PARALLELISM": "false", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}


def evaluate_artifact(
    plugin: Any, task: TaskDefinition, prepared: PreparedTask, artifact_dir: Path, settings: Settings, **extra: Any
) -> Evaluation:
    """The common evaluation request of a task plugin (hidden split, script spec, artifact, base model,
    plus the type's own ``extra`` entries), scored in the child process."""
    request = {
        "hidden_file": str(prepared.hidden_file),
        "dataset_spec": prepared.dataset_spec,
        "artifact_dir": str(artifact_dir),
        "base_model": task.base_model,
        **extra,
    }
    return evaluate_in_child(plugin.task_type, plugin.direction, request, settings.data)


def evaluate_in_child(task_type: TaskType, direction: Direction, request: dict[str, Any], rules: DataRules) -> Evaluation:
    payload = json.dumps(request | {"task_type": task_type.value, "rules": rules.model_dump()})
    runner, times = _scope.get() or (None, EvaluationTimes())
    started = time.monotonic()
    run = runner.run(payload, str(request.get("base_model")), rules) if runner is not None else run_cold(payload, rules)
    elapsed = time.monotonic() - started
    if run.timed_out:
        times.startup += elapsed
        return Evaluation(None, direction, failure=f"evaluation exceeded its {rules.eval_timeout_seconds:g} s limit")
    if run.result is None:
        times.startup += elapsed
        tail = run.stderr[-STDERR_TAIL_CHARS:]
        return Evaluation(None, direction, failure=f"evaluation process died (exit {run.exit_code}): {tail}")
    result = json.loads(run.result)
    compute = float(result.pop("compute_seconds", 0.0))
    times.compute += compute
    times.startup += max(0.0, elapsed - compute)
    return _to_evaluation(result, direction)


def run_cold(payload: str, rules: DataRules) -> GuardedRun:
    """One evaluation in a worker of its own, started for it and gone after it."""
    return run_guarded(
        [sys.executable, "-m", WORKER_MODULE, RESULT_FILE], payload, env=worker_env(),
        timeout=rules.eval_timeout_seconds, stop_grace=rules.eval_stop_grace_seconds,
        scratch_prefix=SCRATCH_PREFIX, result_name=RESULT_FILE,
    )


def _to_evaluation(result: dict[str, Any], direction: Direction) -> Evaluation:
    score = result.get("score")
    details = dict(result.get("details", {}))
    if result.get("traceback"):
        details["traceback"] = result["traceback"]
    if score is None or not math.isfinite(score):
        return Evaluation(None, direction, failure=result.get("failure") or "no score", details=details)
    return Evaluation(float(score), direction, per_example=tuple(result.get("per_example", ())), details=details,
                      lead_unit=result.get("lead_unit"))
