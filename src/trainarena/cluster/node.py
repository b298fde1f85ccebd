"""The node's side of a Ray task: one piece of work (a tournament run, a job's run, a base-model
evaluation) done by the pipeline's ``SandboxedExecutor`` over the node's own sandbox backend.

What travels: the driver sends the work (plain frozen data), its settings and a :class:`SharedCheck`;
the node sends back the ``RunReport`` (a few KB, through Ray's object store). The artifact and the
logs are written into the run's folder under the settings' data directory, which every node mounts
at the same path (docs/deploy.md, "Ray cluster"), so they are on the operator's storage the moment
the run writes them. The node never opens the store: only the driver writes it.

Starting, stopping: a run starts on its node only once the node has claimed :data:`START_CLAIM`, a
file the driver names (in the run's folder) and that one side alone can create (``O_EXCL``, atomic on
a local disk and on NFS v3 or later). A driver that stops a run, or gives up waiting for a node to
hold it, claims it first when it can: the node then starts nothing, and the driver may cancel the
Ray task without interrupting a started run (``ray.cancel`` raises KeyboardInterrupt in a running
task, which would leave its sandbox behind). Once the node has claimed it, the driver stops the run
through :data:`STOP_FILE`, which a watcher on the node polls, as a local run is stopped: with the
grace, or at once (SIGKILL) when the file says :data:`AT_ONCE` (a stop that keeps nothing of the run:
``execution.supervise.StopAtOnce``). A tournament run's script that reaches its deadline is told back
the same way: the node writes :data:`DEADLINE_FILE`, and the driver, which polls it, tells the run's
thread there (``execution.supervise.told_at_deadline``: its look ahead, ``early_runs``, takes the run
as failed from then, not once its grace has passed).
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from trainarena.execution import SandboxUnavailable, make_backend
from trainarena.execution.supervise import StopAtOnce, kills_at_once, stop_when, told_at_deadline
from trainarena.pipeline import SandboxedExecutor
from trainarena.runs import CompetitorInfo, RunReport, RunRequest
from trainarena.settings import Settings
from trainarena.tasks.base import TaskDefinition

# Written by the driver into a run's folder to stop it on its node (a job cancelled, its worker
# stopping, a drive that lost its lease).
STOP_FILE = "stop-requested"
# Created by whichever comes first: the node as it starts the work, or the driver withdrawing a run
# that no node has started (module docstring).
START_CLAIM = "start-claim"
# What STOP_FILE holds when the run is to be killed at once, without the grace.
AT_ONCE = "at once"
# Written by the node into a tournament run's folder once its script reached its deadline.
DEADLINE_FILE = "deadline-reached"


class ClusterUnavailable(SandboxUnavailable):
    """The Ray cluster cannot be reached or used; the message says what to start or configure."""


class SharedPathMissing(RuntimeError):
    """A node does not see the operator's data directory at the driver's path."""


class NodeExecutor(Protocol):
    """What a node runs the work with: ``SandboxedExecutor`` (tests pass a fake)."""

    def execute(self, request: RunRequest) -> RunReport: ...

    def run_task(self, competitor: CompetitorInfo, task: TaskDefinition, run_dir: Path, run_name: str) -> RunReport: ...

    def evaluate_base_model(self, task: TaskDefinition) -> RunReport: ...

    def close(self) -> None: ...


# (the driver's settings, the GPU ids Ray gave the task) -> the executor that does the work on the node.
NodeExecutorFactory = Callable[[Settings, list[int]], NodeExecutor]


@dataclass(frozen=True)
class SandboxedOnNode:
    """The real ``NodeExecutorFactory``: the pipeline's executor over the backend ``settings.sandbox``
    names, built on the node (``unsafe``: the operator's ``--unsafe``), with Ray's GPUs only."""

    unsafe: bool = False

    def __call__(self, settings: Settings, gpus: list[int]) -> NodeExecutor:
        return SandboxedExecutor(settings, make_backend(settings, unsafe=self.unsafe), gpus=gpus)


@dataclass(frozen=True)
class SharedCheck:
    """A file the driver wrote under its data directory, with a random token: a node that cannot read
    it at the same path does not share the operator's storage, and refuses the work."""

    path: Path
    token: str

    @classmethod
    def create(cls, data_dir: Path) -> SharedCheck:
        token = secrets.token_hex(16)
        path = data_dir / "cluster" / f"driver-{token}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(token)
        return cls(path, token)

    def verify(self) -> None:
        try:
            found = self.path.read_text()
        except OSError:
            found = None
        if found != self.token:
            raise SharedPathMissing(
                f"Ray node {socket.gethostname()} does not see the operator's data directory: the driver's check "
                f"file {self.path} is missing there; mount the shared data directory at the same path on every "
                "node (docs/deploy.md, 'Ray cluster')"
            )

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class ExecuteRun:
    """A tournament run: prepare, sandboxed run, artifact check, evaluation (``execute``); stopped when
    the driver writes ``STOP_FILE`` into its run folder (a stop around the drive, a lost lease), and
    ``DEADLINE_FILE`` written there once its script reached its deadline."""

    request: RunRequest

    def apply(self, executor: NodeExecutor, settings: Settings) -> RunReport:
        with _stopped_by_file(self.request.run_dir / STOP_FILE, settings.cluster.stop_poll_seconds), \
                told_at_deadline((self.request.run_dir / DEADLINE_FILE).touch):
            return executor.execute(self.request)


@dataclass(frozen=True)
class RunTask:
    """One script on one task outside a tournament (a job, ``trainarena run``, an audit's re-run);
    stopped when the driver writes ``STOP_FILE`` into ``run_dir``."""

    competitor: CompetitorInfo
    task: TaskDefinition
    run_dir: Path
    run_name: str

    def apply(self, executor: NodeExecutor, settings: Settings) -> RunReport:
        with _stopped_by_file(self.run_dir / STOP_FILE, settings.cluster.stop_poll_seconds):
            return executor.run_task(self.competitor, self.task, self.run_dir, self.run_name)


@dataclass(frozen=True)
class EvaluateBase:
    """The untrained base model scored on the hidden split (``evaluate_base_model``)."""

    task: TaskDefinition

    def apply(self, executor: NodeExecutor, settings: Settings) -> RunReport:
        return executor.evaluate_base_model(self.task)


Work = ExecuteRun | RunTask | EvaluateBase


def claim_start(path: Path, claimant: str) -> bool:
    """Create ``path`` if nothing has yet (exclusively), naming ``claimant``: whether this side was first."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as out:
        out.write(f"{claimant}\n")
    return True


def do_work(work: Work, settings: Settings, factory: NodeExecutorFactory, shared: SharedCheck, gpus: list[int],
            claim: Path) -> RunReport | None:
    """What the Ray task runs on its node: the work, once ``claim`` (:data:`START_CLAIM`) is the
    node's; None, starting nothing, when the driver withdrew the run first (it cancels the task)."""
    shared.verify()
    if not claim_start(claim, f"started on Ray node {socket.gethostname()} pid {os.getpid()}"):
        return None
    executor = factory(settings, gpus)
    try:
        return work.apply(executor, settings)
    finally:
        executor.close()


def request_stop(run_dir: Path, stop: threading.Event) -> None:
    """Ask the node running the work in ``run_dir`` to stop it, as ``stop`` asks: at once or with the
    grace. Written whole, then renamed: the node's watcher never reads a half-written file."""
    partial = run_dir / f".{STOP_FILE}-{secrets.token_hex(4)}"
    partial.write_text(AT_ONCE if kills_at_once(stop) else "")
    os.replace(partial, run_dir / STOP_FILE)


class _FileStop(StopAtOnce):
    """The node's stop of a run, set once the driver's stop file appears; at once if it says so."""

    asked_at_once = False

    def at_once(self) -> bool:
        return self.asked_at_once and self.is_set()


@contextmanager
def _stopped_by_file(path: Path, poll_seconds: float) -> Iterator[None]:
    """Runs supervised in the block stop once ``path`` appears (the driver asked, over the shared path)."""
    stop, done = _FileStop(), threading.Event()

    def watch() -> None:
        # A stop with the grace may be asked at once later (the driver rewrites the file): watched on.
        while not done.wait(poll_seconds) and not stop.asked_at_once:
            if path.exists():
                stop.asked_at_once = path.read_text() == AT_ONCE
                stop.set()

    watcher = threading.Thread(target=watch, daemon=True, name="trainarena-stop-watch")
    watcher.start()
    try:
        with stop_when(stop):
            yield
    finally:
        done.set()
        watcher.join()
