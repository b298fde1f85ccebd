"""``RayExecutor``: every run, job run and base-model evaluation as one Ray task on a node of a
cluster, done there by the pipeline's sandboxed executor (``cluster.node``).

Each task asks for the resources of ``cluster.resources.task_resources`` (the GPUs of the sizing
rule from the base model's size, the CPUs and memory of ``settings.cluster``), so Ray places it on
a node that can hold it and never gives one GPU to two runs. Ray retries nothing by itself
(``max_retries=0``): a task lost with its node (or its worker process) raises
:class:`~trainarena.runs.RunInterrupted` here, and the caller records the lost try as an interrupted
attempt and tries again in a fresh attempt and folder, so a retry is visible and nothing is scored
twice. An exception the work itself raised on the node is raised here as that exception.

This module imports Ray; only ``cluster.factory`` imports it, when ``cluster.executor`` is ``ray``.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import ray
from ray.exceptions import (
    LocalRayletDiedError,
    NodeDiedError,
    ObjectFetchTimedOutError,
    ObjectLostError,
    RayError,
    RayTaskError,
    WorkerCrashedError,
)

from trainarena.cluster.node import (
    STOP_FILE,
    ClusterUnavailable,
    EvaluateBase,
    ExecuteRun,
    NodeExecutorFactory,
    RunTask,
    SharedCheck,
    Work,
    do_work,
)
from trainarena.cluster.resources import task_resources
from trainarena.execution import gpus_for
from trainarena.execution.supervise import current_stop_event
from trainarena.pipeline import parameter_count, resolve_base_model
from trainarena.runs import CompetitorInfo, RunInterrupted, RunReport, RunRequest
from trainarena.settings import Settings
from trainarena.tasks.base import DatasetError, TaskDefinition

# How much of a lost task's error message is kept in the interrupted attempt's reason.
_REASON_CHARS = 400

# Ray's connection is one per process: the executors of one process (serve's tournaments and its job
# worker) share it, and the last one closed disconnects, if an executor made the connection.
_connection_lock = threading.Lock()
_connection_users = 0
_connection_owned = False


def _stop_by_file(run_dir: Path) -> tuple[threading.Event, Path] | None:
    """The stop around this call (``execution.supervise.stop_when``), passed to the node as a file in
    the run's folder, which its watcher polls."""
    stop = current_stop_event()
    return None if stop is None else (stop, run_dir / STOP_FILE)


def _on_node(work: Work, settings: Settings, factory: NodeExecutorFactory, shared: SharedCheck) -> RunReport:
    return do_work(work, settings, factory, shared, [int(gpu) for gpu in ray.get_gpu_ids()])


class RayExecutor:
    """``RunExecutor`` (and the workbench's, audits' and jobs' executor) over a Ray cluster."""

    # A tournament run on a node is not stopped from the driver (only a job's, through its stop file),
    # so the orchestrator trains no early runs here: a dropped one would hold its node for its budget.
    stops_runs_at_once = False

    def __init__(self, settings: Settings, factory: NodeExecutorFactory, node_backend: str | None = None) -> None:
        self._settings = settings
        self._factory = factory
        self.name = f"{node_backend or settings.sandbox.backend} on Ray nodes"
        _use_connection(settings)
        self._remote = ray.remote(max_retries=0)(_on_node)
        self._shared = SharedCheck.create(settings.data_dir)
        self._sizes: dict[str, int] = {}
        self._sizes_lock = threading.Lock()
        self._most_node_gpus = 0.0  # the largest node's GPUs seen since this executor started

    def execute(self, request: RunRequest) -> RunReport:
        return self._dispatch(ExecuteRun(request), request.task, _stop_by_file(request.run_dir))

    def run_task(self, competitor: CompetitorInfo, task: TaskDefinition, run_dir: Path, run_name: str) -> RunReport:
        run_dir.mkdir(parents=True, exist_ok=True)
        return self._dispatch(RunTask(competitor, task, run_dir, run_name), task, _stop_by_file(run_dir))

    def evaluate_base_model(self, task: TaskDefinition) -> RunReport:
        return self._dispatch(EvaluateBase(task), task)

    def close(self) -> None:
        self._shared.remove()
        _leave_connection()

    def _dispatch(self, work: Work, task: TaskDefinition, on_stop: tuple[threading.Event, Path] | None = None) -> RunReport:
        options = task_resources(self._settings, self._gpus_needed(task), self._largest_node_gpus())
        ref = self._remote.options(**options).remote(work, self._settings, self._factory, self._shared)
        if on_stop is not None:
            stop, stop_file = on_stop
            while not ray.wait([ref], timeout=self._settings.cluster.stop_poll_seconds)[0]:
                if stop.is_set() and not stop_file.exists():
                    stop_file.touch()  # the node's watcher stops the run; its report still comes back
        try:
            return ray.get(ref)
        except RayTaskError as error:
            raise error.as_instanceof_cause() from None  # the work's own exception, as a local run raises it
        except _LOST_WITH_ITS_NODE as error:
            raise RunInterrupted(f"lost on the Ray cluster ({_brief(error)}); tried again") from error
        except RayError as error:
            # Ray itself refused or killed the work (its memory monitor, a runtime environment or disk that
            # failed, no node that fits): trying it again would fail again. The drive stops, naming it.
            raise RuntimeError(f"the Ray cluster did not run {task.name!r} ({_brief(error)})") from error

    def _largest_node_gpus(self) -> float:
        """The most GPUs of one node, alive now or seen alive before: Ray reports a dead node's resources
        as none, and a GPU node that is down must make runs wait for it, not go to the CPU."""
        alive = max((node["Resources"].get("GPU", 0.0) for node in ray.nodes() if node["Alive"]), default=0.0)
        with self._sizes_lock:
            self._most_node_gpus = max(self._most_node_gpus, alive)
            return self._most_node_gpus

    def _gpus_needed(self, task: TaskDefinition) -> int:
        """The sizing rule's GPUs for the task's base model, read once per model; a model the driver
        cannot read asks for none (the node reports the task's error)."""
        with self._sizes_lock:
            if task.base_model not in self._sizes:
                try:
                    params = parameter_count(resolve_base_model(task.base_model))
                except DatasetError:
                    params = 0
                self._sizes[task.base_model] = params
            params = self._sizes[task.base_model]
        return gpus_for(params, task.task_type, self._settings.resources)


# The run's node or worker process went away: the run itself may be fine, so it is tried again.
_LOST_WITH_ITS_NODE = (NodeDiedError, WorkerCrashedError, LocalRayletDiedError, ObjectLostError, ObjectFetchTimedOutError)


def _brief(error: RayError) -> str:
    return f"{type(error).__name__}: {' '.join(str(error).split())[:_REASON_CHARS]}"




def _use_connection(settings: Settings) -> None:
    global _connection_users, _connection_owned
    with _connection_lock:
        if _connection_users == 0 and not ray.is_initialized():
            _connect(settings)
            _connection_owned = True
        _connection_users += 1


def _leave_connection() -> None:
    global _connection_users, _connection_owned
    with _connection_lock:
        _connection_users -= 1
        if _connection_users == 0 and _connection_owned:
            ray.shutdown()
            _connection_owned = False


def _connect(settings: Settings) -> None:
    rules = settings.cluster
    try:
        # Workers' output stays in their node's Ray logs: a run's own logs are in its folder, and the
        # shells' output (--json on stdout) must not be interleaved with Ray's.
        ray.init(address=rules.address, namespace=rules.namespace, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = f"at {rules.address!r}" if rules.address else "on this machine"
        raise ClusterUnavailable(
            f"cannot use the Ray cluster {where}: {error}; start one (`ray start --head`, then `ray start --address "
            "HEAD:6379` on each node) and set TRAINARENA_CLUSTER__ADDRESS, or set TRAINARENA_CLUSTER__EXECUTOR=local"
        ) from error
