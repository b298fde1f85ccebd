"""``RayExecutor``: every run, job run and base-model evaluation as one Ray task on a node of a
cluster, done there by the pipeline's sandboxed executor (``cluster.node``).

Each task asks for the resources of ``cluster.resources.task_resources`` (the GPUs of the sizing
rule from the base model's size, the CPUs and memory of ``settings.cluster``), so Ray places it on
a node that can hold it and never gives one GPU to two runs. Ray retries nothing by itself
(``max_retries=0``): a task lost with its node (or its worker process) raises
:class:`~trainarena.runs.RunInterrupted` here, and the caller records the lost try as an interrupted
attempt and tries again in a fresh attempt and folder, so a retry is visible and nothing is scored
twice. An exception the work itself raised on the node is raised here as that exception.

Waiting for a node: a task Ray cannot place yet waits in its queue. A stop around the call (a job
cancelled, its worker stopping, a drive that lost its lease: ``execution.supervise.stop_when``) ends
such a wait at once: the driver withdraws the run by claiming its start (``cluster.node``,
:data:`~trainarena.cluster.node.START_CLAIM`) and cancels the task, which never starts, and the call
returns the report of a local run stopped while it waited for its devices (FAILED, "stopped on request
before it finished: ... never started"). A run its node already started is stopped through its stop
file instead, never by ``ray.cancel``: the driver writes it within a ``cluster.stop_poll_seconds`` of the
stop and the node's watcher reads it within another, so a stop at once (an early run the tournament
dropped, ``early_runs``) kills the run and frees its node within about a second, as a local run is: the
orchestrator trains early runs on Ray too. A run that waits while no live node could ever hold what it asks
for (its GPU nodes down, say) is withdrawn after ``cluster.placement_timeout_seconds`` and
:class:`~trainarena.cluster.resources.PlacementTimeout` raised, naming the ask and the live nodes. That
is a ``RunNotStarted``, not a ``RunInterrupted``: trying again at once would wait again for the same
missing node, and each try would count against the competitor (``lease.max_attempts``); instead the
drive stops with the error and the run's attempt is withdrawn, so the run is claimed afresh once the
tournament is driven again (a job fails with the error). A run waiting only for a busy node waits
without limit.

This module imports Ray; only ``cluster.factory`` imports it, when ``cluster.executor`` is ``ray``.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
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
    DEADLINE_FILE,
    START_CLAIM,
    STOP_FILE,
    ClusterUnavailable,
    EvaluateBase,
    ExecuteRun,
    NodeExecutorFactory,
    RunTask,
    SharedCheck,
    Work,
    claim_start,
    do_work,
    request_stop,
)
from trainarena.cluster.resources import PlacementTimeout, asked_resources, describe, describe_nodes, holds, task_resources
from trainarena.contract import RunStatus
from trainarena.execution import gpus_for
from trainarena.execution.supervise import STOPPED_REASON, current_stop_event, deadline_reached, kills_at_once
from trainarena.pipeline import parameter_count, resolve_base_model
from trainarena.runs import CompetitorInfo, RunInterrupted, RunReport, RunRequest
from trainarena.settings import Settings
from trainarena.tasks.base import DatasetError, TaskDefinition

# How much of a lost task's error message is kept in the interrupted attempt's reason.
_REASON_CHARS = 400
# How long the live nodes read from Ray serve every waiting run's placement check.
_NODES_READ_SECONDS = 1.0

# Ray's connection is one per process: the executors of one process (serve's tournaments and its job
# worker) share it, and the last one closed disconnects, if an executor made the connection.
_connection_lock = threading.Lock()
_connection_users = 0
_connection_owned = False


def _on_node(work: Work, settings: Settings, factory: NodeExecutorFactory, shared: SharedCheck, claim: Path) -> RunReport | None:
    return do_work(work, settings, factory, shared, [int(gpu) for gpu in ray.get_gpu_ids()], claim)


class RayExecutor:
    """``RunExecutor`` (and the workbench's, audits' and jobs' executor) over a Ray cluster."""

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
        self._alive: list[dict[str, float]] = []  # the live nodes' resources, read at _alive_read_at
        self._alive_read_at = -_NODES_READ_SECONDS

    def execute(self, request: RunRequest) -> RunReport:
        return self._dispatch(ExecuteRun(request), request.task, request.run_dir)

    def run_task(self, competitor: CompetitorInfo, task: TaskDefinition, run_dir: Path, run_name: str) -> RunReport:
        run_dir.mkdir(parents=True, exist_ok=True)
        return self._dispatch(RunTask(competitor, task, run_dir, run_name), task, run_dir)

    def evaluate_base_model(self, task: TaskDefinition) -> RunReport:
        return self._dispatch(EvaluateBase(task), task, None)

    def close(self) -> None:
        self._shared.remove()
        _leave_connection()

    def _dispatch(self, work: Work, task: TaskDefinition, run_dir: Path | None) -> RunReport:
        """The work as a Ray task; a run (``run_dir``) stopped by the stop around this call, through its
        folder. A base-model evaluation is not stopped; its claim is a file of the driver's own."""
        options = task_resources(self._settings, self._gpus_needed(task), self._largest_node_gpus())
        asked, dispatched_at = asked_resources(options), time.time()
        if run_dir is None:
            claim, stop = self._shared.path.with_name(f"start-{secrets.token_hex(8)}"), None
        else:
            claim, stop = run_dir / START_CLAIM, current_stop_event()
            for left in (claim, run_dir / STOP_FILE, run_dir / DEADLINE_FILE):  # by an earlier run in the same folder
                left.unlink(missing_ok=True)
        deadline = run_dir / DEADLINE_FILE if isinstance(work, ExecuteRun) else None  # only a tournament run's is told
        ref = self._remote.options(**options).remote(work, self._settings, self._factory, self._shared, claim)
        try:
            if not self._watch(ref, task, asked, claim, stop, deadline):
                reason = f"{STOPPED_REASON}: it was still waiting for a Ray node to hold it ({describe(asked)}), and never started"
                return RunReport(RunStatus.FAILED, dispatched_at, time.time(), failure_reason=reason)
            report = self._get(ref, task)
        finally:
            if run_dir is None:
                claim.unlink(missing_ok=True)
        if report is None:  # the node found the run withdrawn, and only this call withdraws it
            raise RuntimeError(f"{task.name!r} was withdrawn from the Ray cluster by someone else: {claim} existed")
        return report

    def _watch(self, ref: ray.ObjectRef, task: TaskDefinition, asked: dict[str, float], claim: Path,
               stop: threading.Event | None, deadline: Path | None) -> bool:
        """Wait until the task is done (True) while a stop or the placement timeout may still act on it,
        or its node may still write ``deadline`` (its script reached its deadline: told on this thread).
        Stopped before its node started it, the run is withdrawn and its task cancelled (False); started,
        its stop file stops it, with the grace and later at once if the stop comes to ask that (a
        cancelled job's try withdrawn as its service stops). Raises :class:`PlacementTimeout` once no
        live node could hold it for ``cluster.placement_timeout_seconds``, withdrawn too (module docstring)."""
        rules = self._settings.cluster
        limit = rules.placement_timeout_seconds or None
        started = False  # the node claimed the start: only the stop file acts on it now
        asked_at_once: bool | None = None  # what the stop file asks: nothing yet, the grace (False), at once
        unheld_since: float | None = None  # since when no live node could hold it
        while (stop is not None and not asked_at_once) or (limit is not None and not started) or deadline is not None:
            if ray.wait([ref], timeout=rules.stop_poll_seconds)[0]:
                return True
            if deadline is not None and deadline.exists():
                deadline_reached()  # the look ahead takes the run as failed from now (early_runs)
                deadline = None
            if stop is not None and stop.is_set() and asked_at_once is not kills_at_once(stop):
                request_stop(claim.parent, stop)  # the node's watcher stops a started run; its report comes back
                asked_at_once = kills_at_once(stop)
                if not started and claim_start(claim, "withdrawn by the driver: stopped before a node started it"):
                    ray.cancel(ref)
                    return False
                started = True
            elif limit is not None and not started:
                started = claim.exists()
                unheld_since = None if started else self._unheld_since(asked, unheld_since)
                if unheld_since is not None and time.monotonic() - unheld_since >= limit:
                    if claim_start(claim, "withdrawn by the driver: no live node could hold it"):
                        ray.cancel(ref)
                        raise PlacementTimeout(
                            f"the Ray cluster did not start {task.name!r}: it asks for {describe(asked)}, and for "
                            f"{limit:g} s (cluster.placement_timeout_seconds) no live node could hold that; the live "
                            f"nodes have: {describe_nodes(self._alive_nodes(), asked)}. Start a node that can (a GPU node "
                            "down?) or ask for less; it was cancelled before it started"
                        )
                    started = True
        return True

    def _unheld_since(self, asked: dict[str, float], since: float | None) -> float | None:
        """Since when no live node could hold ``asked`` (``since``, or now), or None while one could."""
        if any(holds(node, asked) for node in self._alive_nodes()):
            return None
        return time.monotonic() if since is None else since

    def _alive_nodes(self) -> list[dict[str, float]]:
        """The live nodes' total resources, read from Ray at most once a ``_NODES_READ_SECONDS`` for
        every waiting run."""
        with self._sizes_lock:
            if time.monotonic() - self._alive_read_at >= _NODES_READ_SECONDS:
                self._alive = [node["Resources"] for node in ray.nodes() if node["Alive"]]
                self._alive_read_at = time.monotonic()
            return self._alive

    @staticmethod
    def _get(ref: ray.ObjectRef, task: TaskDefinition) -> RunReport | None:
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
