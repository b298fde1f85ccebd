"""Parent side of evaluation: run a task type's scorer in a child process with a time limit and an
address-space cap, and turn whatever happens (success, failure reason, crash, timeout) into an
:class:`Evaluation`. The caller never sees an exception from a broken artifact."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from trainarena.contract import Direction, TaskType
from trainarena.settings import DataRules, Settings
from trainarena.tasks.base import Evaluation, PreparedTask, TaskDefinition

STDERR_TAIL_CHARS = 1500  # how much of a crashed child's stderr is kept as the failure reason


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
    with tempfile.TemporaryDirectory(prefix="trainarena-eval-") as scratch:
        request_file, result_file = Path(scratch) / "request.json", Path(scratch) / "result.json"
        request_file.write_text(json.dumps(request | {"task_type": task_type.value, "rules": rules.model_dump()}))
        command = [sys.executable, "-m", "trainarena.tasks.evaluate_worker", str(request_file), str(result_file)]
        env = os.environ | {"TOKENIZERS_PARALLELISM": "false", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}
        try:
            process = subprocess.run(
                command, capture_output=True, text=True, timeout=rules.eval_timeout_seconds, env=env, cwd=scratch
            )
        except subprocess.TimeoutExpired:
            return Evaluation(None, direction, failure=f"evaluation exceeded its {rules.eval_timeout_seconds:g} s limit")
        if not result_file.is_file():
            tail = (process.stderr or "")[-STDERR_TAIL_CHARS:]
            return Evaluation(None, direction, failure=f"evaluation process died (exit {process.returncode}): {tail}")
        return _to_evaluation(json.loads(result_file.read_text()), direction)


def _to_evaluation(result: dict[str, Any], direction: Direction) -> Evaluation:
    score = result.get("score")
    details = dict(result.get("details", {}))
    if result.get("traceback"):
        details["traceback"] = result["traceback"]
    if score is None or not math.isfinite(score):
        return Evaluation(None, direction, failure=result.get("failure") or "no score", details=details)
    return Evaluation(float(score), direction, per_example=tuple(result.get("per_example", ())), details=details)
