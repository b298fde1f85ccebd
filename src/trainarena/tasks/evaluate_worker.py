"""The evaluation child process: ``python -m trainarena.tasks.evaluate_worker RESULT.json``, the request
as JSON on stdin (never written to disk: it names the hidden split). Started guarded by
``tasks.child_evaluation``: it dies with its driver, and RESULT.json lies in its private scratch folder.

It protects the platform from an artifact that eats memory or time (address-space cap here, wall-clock
limit in the parent) and turns every error of loading or scoring into a failure reason in RESULT.json.
It does not protect against malicious weights exploiting a bug in safetensors or torch: the loaders it
uses never execute artifact code, but the process is not a sandbox.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import traceback
from pathlib import Path
from typing import Any


def apply_limits(rules: dict[str, Any]) -> int:
    """Pin torch's CPU threads (CPU scores are bit-for-bit repeatable only at one thread count) and cap
    the address space (skipped under CUDA, whose runtime maps huge ranges). Returns the thread count."""
    import torch

    if rules.get("eval_cpu_threads"):
        torch.set_num_threads(rules["eval_cpu_threads"])
    limit_mb = rules.get("eval_memory_limit_mb") or 0
    if limit_mb and not torch.cuda.is_available():
        limit = limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return torch.get_num_threads()


def evaluate_request(request: dict[str, Any]) -> dict[str, Any]:
    from trainarena.tasks import plugin_module

    module = importlib.import_module(plugin_module(request["task_type"]) + ".evaluation")
    try:
        return module.run_evaluation(request)
    except MemoryError:
        return {"score": None, "failure": "out of memory: the evaluation exceeded its memory limit"}
    except Exception as error:  # any failure of the artifact is a result, not a crash
        message = str(error).strip().splitlines()[0][:500] if str(error).strip() else ""
        return {"score": None, "failure": f"{type(error).__name__}: {message}", "traceback": traceback.format_exc(limit=5)}


def main(argv: list[str]) -> int:
    result_path = Path(argv[0])
    request = json.loads(sys.stdin.read())
    threads = apply_limits(request["rules"])
    result = evaluate_request(request)
    result["details"] = dict(result.get("details", {})) | {"cpu_threads": threads}  # what the score's bits depend on
    partial = result_path.with_suffix(".partial")
    partial.write_text(json.dumps(result))
    os.replace(partial, result_path)  # the parent never reads half a result
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
