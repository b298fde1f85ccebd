"""A warm evaluation worker: the evaluation child process (``tasks.evaluate_worker --serve``) kept up
between evaluations, so each one after the first skips Python's start and the library imports (seconds
per run on a small CPU machine, measured by ``benchmarks.overhead``).

Isolation is the cold worker's (``tasks.child_evaluation``): guarded (it dies with the thread that
started it, its scratch folder with it), requests on stdin only, its own address-space cap and pinned
thread count. Scores are the cold worker's, bit for bit (tested): the worker keeps nothing between
requests but imported libraries; every evaluator loads its models and seeds its generators itself.

What can differ from a cold start, and how it is made not to:
- A worker that crashed, or ran out of memory, after earlier evaluations (memory it kept from them
  may be what was missing): the evaluation is retried once in a fresh worker, which is a cold start, so
  the result is the cold one. A fresh worker's crash is reported as the cold worker's is.
- A hung evaluation: the worker is stopped at ``eval_timeout_seconds`` (the evaluation fails as a
  cold one does) and the next evaluation starts a fresh one.
- Memory held over time: the worker is recycled after ``eval_worker_max_evaluations`` evaluations
  and when the base model or the evaluation rules change; a drive ends its scoring thread's worker
  when it ends. A worker serves the one thread that started it (its guard dies with that thread).
"""

from __future__ import annotations

import json
import sys
import threading

from trainarena.execution.child_process import GuardedRun, GuardedWorker
from trainarena.settings import DataRules
from trainarena.tasks.child_evaluation import SCRATCH_PREFIX, WORKER_MODULE, worker_env

RESULT_STEM = "result"  # the worker answers request n in <scratch>/result-<n>.json
POLL_SECONDS = 0.02  # how often the parent looks for the answer (an evaluation takes seconds)
OUT_OF_MEMORY = "out of memory"  # how evaluate_worker words a MemoryError


class WarmEvaluator:
    """``EvaluationRunner`` keeping one warm worker per evaluating thread (a drive scores on one thread;
    drives side by side each get their own worker instead of taking turns with one)."""

    def __init__(self, max_evaluations: int) -> None:
        self._max = max_evaluations
        self._guard = threading.Lock()
        self._workers: dict[int, tuple[GuardedWorker, tuple[str, str]]] = {}  # thread -> worker, (base model, rules)
        self.started = 0  # workers started so far (each one a cold start)

    def run(self, payload: str, base_model: str, rules: DataRules) -> GuardedRun:
        key = (base_model, rules.model_dump_json())
        worker = self._worker_for(key, rules)
        fresh = worker.served == 0
        run = worker.request(payload, rules.eval_timeout_seconds)
        if not fresh and _worth_a_cold_retry(run):
            self.close_mine()
            worker = self._worker_for(key, rules)
            run = worker.request(payload, rules.eval_timeout_seconds)
        if run.result is None or worker.served >= self._max:
            self.close_mine()
        return run

    def warm_up(self, task_type: str, base_model: str, rules: DataRules) -> bool:
        """Start this thread's worker and import what ``task_type``'s evaluations need, ahead of the
        first artifact. Returns whether the worker is ready."""
        payload = json.dumps({"warm_up": True, "task_type": task_type, "rules": rules.model_dump()})
        run = self._worker_for((base_model, rules.model_dump_json()), rules).request(payload, rules.eval_timeout_seconds)
        if run.result is None:
            self.close_mine()
        return run.result is not None

    def _worker_for(self, key: tuple[str, str], rules: DataRules) -> GuardedWorker:
        self._close_those_of_ended_threads()
        with self._guard:
            held = self._workers.get(threading.get_ident())
        if held is not None and (held[1] != key or not held[0].alive()):
            self.close_mine()
            held = None
        if held is None:
            argv = [sys.executable, "-m", WORKER_MODULE, "--serve", RESULT_STEM]
            worker = GuardedWorker(argv, env=worker_env(), stop_grace=rules.eval_stop_grace_seconds,
                                   scratch_prefix=SCRATCH_PREFIX, result_stem=RESULT_STEM, poll_seconds=POLL_SECONDS)
            with self._guard:
                self._workers[threading.get_ident()] = (worker, key)
                self.started += 1
            return worker
        return held[0]

    def _close_those_of_ended_threads(self) -> None:
        """A thread that evaluated and ended (a job's, outside any drive) took its worker's guard with it:
        its worker is reaped and its pipes closed here, so a long-running service does not collect them."""
        running = {thread.ident for thread in threading.enumerate()}
        with self._guard:
            ended = [self._workers.pop(ident) for ident in list(self._workers) if ident not in running]
        for worker, _key in ended:
            worker.close()

    def close_mine(self) -> None:
        """End this thread's worker (a drive's scoring thread, when the drive ends)."""
        with self._guard:
            held = self._workers.pop(threading.get_ident(), None)
        if held is not None:
            held[0].close()

    def close(self) -> None:
        """End every worker (those of threads that are gone died with them; this reaps them)."""
        with self._guard:
            held, self._workers = list(self._workers.values()), {}
        for worker, _key in held:
            worker.close()


def _worth_a_cold_retry(run: GuardedRun) -> bool:
    """A used worker died, or ran out of memory: what a fresh one might not do."""
    if run.timed_out:
        return False
    if run.result is None:
        return True
    return str(json.loads(run.result).get("failure") or "").startswith(OUT_OF_MEMORY)
