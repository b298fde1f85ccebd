"""The evaluation child process: ``python -m trainarena.tasks.evaluate_worker RESULT.json``, the request
as JSON on stdin (never written to disk: it names the hidden split). Started guarded by
``tasks.child_evaluation``: it dies with its driver, and RESULT.json lies in its private scratch folder.

``--serve STEM`` keeps it warm (``tasks.warm_evaluation``): one request per stdin line, answered in
``STEM-<n>.json``, until stdin closes. Nothing carries over from one request to the next but the
imported libraries and the thread count (each evaluator loads its models and seeds its generators
itself), so a warm answer is the cold one.

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
import time
import traceback
from pathlib import Path
from typing import Any

LIBRARIES = {"image": "diffusers"}  # the model library a type's evaluator loads with; text types: transformers


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


def evaluation_module(task_type: str) -> Any:
    """The type's evaluation module, with the model library it loads with (imported once per process:
    the start-up a warm worker saves, and that the timings count apart from the compute)."""
    from trainarena.tasks import plugin_module

    importlib.import_module(LIBRARIES.get(task_type, "transformers"))
    return importlib.import_module(plugin_module(task_type) + ".evaluation")


def evaluate_request(request: dict[str, Any]) -> dict[str, Any]:
    import torch

    module = evaluation_module(request["task_type"])
    try:
        return module.run_evaluation(request)
    except (MemoryError, torch.OutOfMemoryError):  # host memory, or a GPU's: a fresh worker may not run out
        return {"score": None, "failure": "out of memory: the evaluation exceeded its memory limit"}
    except Exception as error:  # any failure of the artifact is a result, not a crash
        message = str(error).strip().splitlines()[0][:500] if str(error).strip() else ""
        from trainarena.tasks.text.scoring import ArtifactError

        # A text artifact's refusal is written as the reason; any other error is named by its type.
        failure = message if isinstance(error, ArtifactError) else f"{type(error).__name__}: {message}"
        return {"score": None, "failure": failure, "traceback": traceback.format_exc(limit=5)}
    finally:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # a warm worker keeps no GPU memory of one artifact into the next


def answer(request: dict[str, Any], threads: int, result_path: Path) -> None:
    """Evaluate ``request`` and write its result to ``result_path`` (its compute time beside the score)."""
    evaluation_module(request["task_type"])
    started = time.monotonic()
    result = evaluate_request(request)
    result["details"] = dict(result.get("details", {})) | {"cpu_threads": threads}  # what the score's bits depend on
    result["compute_seconds"] = time.monotonic() - started  # read by the parent, not stored with the score
    partial = result_path.with_suffix(".partial")
    partial.write_text(json.dumps(result))
    os.replace(partial, result_path)  # the parent never reads half a result


def serve(stem: str) -> int:
    """Answer request lines until stdin closes (the warm worker)."""
    threads = None
    for number, line in enumerate(sys.stdin, start=1):
        request = json.loads(line)
        if threads is None:  # the parent keys a worker by its rules: they are the same for every request
            threads = apply_limits(request["rules"])
        if request.get("warm_up"):  # only import what the type's evaluations will need
            evaluation_module(request["task_type"])
            Path(f"{stem}-{number}.json").write_text(json.dumps({"warm": True}))
            continue
        answer(request, threads, Path(f"{stem}-{number}.json"))
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--serve"]:
        return serve(argv[1])
    request = json.loads(sys.stdin.read())
    answer(request, apply_limits(request["rules"]), Path(argv[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
