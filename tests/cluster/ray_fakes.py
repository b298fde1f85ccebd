"""Fake node executors for the Ray tests: each try leaves a line in ``executions.log`` on the shared
data directory (run id, attempt, node) and an artifact in its run folder; scores are deterministic
from the competitor and the task, so a retried run scores as its first try would have."""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import ray

from trainarena.contract import Direction, RunStatus, TaskType
from trainarena.engine.model import Stage
from trainarena.execution.local import _GroupTerminator
from trainarena.execution.supervise import Launch, supervise
from trainarena.orchestrator import create_tournament
from trainarena.runs import CompetitorInfo, RunReport, RunRequest
from trainarena.settings import Settings
from trainarena.store import Store, add_competitor
from trainarena.tasks.base import Evaluation, TaskDefinition

EXECUTIONS = "executions.log"


def fake_tournament(store: Store, names: list[str], champion: str | None = None) -> int:
    """A text tournament of ``names`` (and ``champion``, defending), registered as stand-ins (never
    fetched: the fake nodes run nothing)."""
    with store.transaction() as session:
        for name in [*names, champion] if champion else names:
            add_competitor(session, name=name, repo_url=f"https://example.org/{name}.git", commit="f" * 40,
                           tree_hash=f"tree-{name}", source_digest=f"digest-{name}", entrypoint="train.py")  # fmt: skip
        return create_tournament(session, name="on-ray", kind="text", seed=5, entrants=names, champion=champion).id


def fake_task(kind: str, stage: Stage, match_id: str, index: int, seed: int) -> TaskDefinition:
    return TaskDefinition(f"{stage}-{match_id}-{index}", TaskType.INSTRUCT, "tiny", {"seed": seed}, 1.0, seed)


def skill(name: str, seed: int) -> float:
    return int.from_bytes(hashlib.sha256(f"{name}:{seed}".encode()).digest()[:4], "big") / 2**32


def executions(data_dir: Path) -> list[tuple[int, int, str]]:
    """(run id, attempt, node id) of every try the fake executors started, in order."""
    path = data_dir / EXECUTIONS
    if not path.exists():
        return []
    return [(int(r), int(a), n) for r, a, n in (line.split() for line in path.read_text().splitlines())]


@dataclass(frozen=True)
class FakeOnNode:
    """A ``NodeExecutorFactory``: the first try of ``slow_for``'s runs sleeps ``slow_seconds`` (long
    enough to kill its node or its driver meanwhile); every other try takes ``seconds``."""

    seconds: float = 0.0
    slow_for: str | None = None
    slow_seconds: float = 0.0

    def __call__(self, settings: Settings, gpus: list[int]) -> FakeRunner:
        return FakeRunner(self, settings)


class FakeRunner:
    def __init__(self, plan: FakeOnNode, settings: Settings) -> None:
        self._plan = plan
        self._settings = settings

    def execute(self, request: RunRequest) -> RunReport:
        started = time.time()
        node = ray.get_runtime_context().get_node_id()
        with (self._settings.data_dir / EXECUTIONS).open("a") as log:
            log.write(f"{request.run_id} {request.attempt} {node}\n")
        slow = request.competitor.name == self._plan.slow_for and request.attempt == 1
        time.sleep(self._plan.slow_seconds if slow else self._plan.seconds)
        return self._report(request.competitor, request.task, request.run_dir, started)

    def run_task(self, competitor: CompetitorInfo, task: TaskDefinition, run_dir: Path, run_name: str) -> RunReport:
        return self._report(competitor, task, run_dir, time.time())

    def evaluate_base_model(self, task: TaskDefinition) -> RunReport:
        return RunReport(RunStatus.SUCCEEDED, time.time(), time.time(), evaluation=Evaluation(2.0, Direction.LOWER))

    def close(self) -> None:
        """Nothing is held."""

    @staticmethod
    def _report(competitor: CompetitorInfo, task: TaskDefinition, run_dir: Path, started: float) -> RunReport:
        logs, output = run_dir / "logs", run_dir / "output"
        for folder in (logs, output):
            folder.mkdir(parents=True, exist_ok=True)
        (logs / "stdout.log").write_text(f"{competitor.name} trained on {task.name}\n")
        weights = f"weights of {competitor.name} on {task.name}".encode()
        (output / "model.safetensors").write_bytes(weights)
        loss = 3.0 - skill(competitor.name, task.seed)
        return RunReport(RunStatus.SUCCEEDED, started, time.time(), log_path=logs, artifact_path=output,
                         artifact_digest=hashlib.sha256(weights).hexdigest(), evaluation=Evaluation(loss, Direction.LOWER))  # fmt: skip


@dataclass(frozen=True)
class WaitForStop:
    """A ``NodeExecutorFactory`` whose ``run_task`` waits (up to ``seconds``) for the stop its node was
    asked for, as a supervised sandbox run does, and reports whether it was stopped (at once: within
    ``grace`` seconds of the stop, as a sandbox run's grace ends early when it is asked at once)."""

    seconds: float = 60.0
    grace: float = 0.0

    def __call__(self, settings: Settings, gpus: list[int]) -> StoppableRunner:
        return StoppableRunner(self.seconds, self.grace)


class StoppableRunner(FakeRunner):
    def __init__(self, seconds: float, grace: float) -> None:
        self._seconds, self._grace = seconds, grace

    def execute(self, request: RunRequest) -> RunReport:
        return self.run_task(request.competitor, request.task, request.run_dir, request.run_name)

    def run_task(self, competitor: CompetitorInfo, task: TaskDefinition, run_dir: Path, run_name: str) -> RunReport:
        from trainarena.execution.supervise import current_stop_event, kills_at_once

        started, stop = time.time(), current_stop_event()
        stopped = stop is not None and stop.wait(self._seconds)
        grace_ends = time.monotonic() + self._grace
        while stopped and not kills_at_once(stop) and time.monotonic() < grace_ends:
            time.sleep(0.05)
        reason = ("stopped at once" if kills_at_once(stop) else "stopped on request") if stopped else "never asked to stop"
        return RunReport(RunStatus.FAILED, started, time.time(), failure_reason=reason)


# Where the runs of ``MarksItsRuns`` are listed, in the shared data directory.
RAN = "ran-on-a-node.log"


def ran(data_dir: Path) -> list[str]:
    """The run folders of every run ``MarksItsRuns`` started on a node."""
    path = data_dir / RAN
    return path.read_text().splitlines() if path.exists() else []


@dataclass(frozen=True)
class MarksItsRuns:
    """A ``NodeExecutorFactory`` whose runs are listed in :data:`RAN`, then report as ``FakeOnNode``'s
    do: whether a run ever reached a node shows there."""

    def __call__(self, settings: Settings, gpus: list[int]) -> MarkingRunner:
        return MarkingRunner(FakeOnNode(), settings)


class MarkingRunner(FakeRunner):
    def execute(self, request: RunRequest) -> RunReport:
        self._mark(request.run_dir)
        return super().execute(request)

    def run_task(self, competitor: CompetitorInfo, task: TaskDefinition, run_dir: Path, run_name: str) -> RunReport:
        self._mark(run_dir)
        return super().run_task(competitor, task, run_dir, run_name)

    def _mark(self, run_dir: Path) -> None:
        with (self._settings.data_dir / RAN).open("a") as log:
            log.write(f"{run_dir}\n")



# Where ``ScriptOnNode``'s runs note how each script ended, in the shared data directory.
SCRIPTS = "scripts-on-nodes.log"
# Ignores SIGTERM, as a script deaf to the platform's stop would: only SIGKILL ends it before its end.
_DEAF_SCRIPT = "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(float(sys.argv[1]))"
# The most a run of ``ScriptOnNode.waits_for_early`` waits for an early run to start.
_EARLY_WAIT_SECONDS = 30.0


def scripts_ended(data_dir: Path) -> list[tuple[str, Path, float, str]]:
    """(competitor, run folder, unix time its script ended, how) of every script ``ScriptOnNode`` ran, in order."""
    path = data_dir / SCRIPTS
    if not path.exists():
        return []
    return [(name, Path(folder), float(ended), how)
            for name, folder, ended, how in (line.split("\t") for line in path.read_text().splitlines())]


def trained_early(run_dir: Path) -> bool:
    """Whether a run folder ``MarksItsRuns`` or ``ScriptOnNode`` listed is an early run's (``early_runs``)."""
    return "early" in run_dir.parts


@dataclass(frozen=True)
class ScriptOnNode:
    """A ``NodeExecutorFactory`` for early runs (``early_runs``): each run is listed in :data:`RAN`, then
    runs a real script, deaf to SIGTERM, supervised on its node as a sandbox run is (a budget of
    ``budget_seconds``, ``grace`` seconds of grace): a stop with the grace ends it after the grace, a stop at once at once. An early
    run's script (a provisional, negative run id) lasts ``early_seconds``, any other's none; the runs of
    ``waits_for_early`` first wait for an early run to start on the other node. A run then reports as
    ``FakeOnNode``'s do, or failed when its competitor is one of ``fails``; its script's end is noted in
    :data:`SCRIPTS`."""

    early_seconds: float = 0.0
    fails: frozenset[str] = frozenset()
    waits_for_early: str | None = None
    grace: float = 30.0
    budget_seconds: float = 300.0

    def __call__(self, settings: Settings, gpus: list[int]) -> ScriptRunner:
        return ScriptRunner(self, settings)


class ScriptRunner(MarkingRunner):
    def __init__(self, plan: ScriptOnNode, settings: Settings) -> None:
        super().__init__(FakeOnNode(), settings)
        self._script = plan

    def execute(self, request: RunRequest) -> RunReport:
        plan, started = self._script, time.time()
        self._mark(request.run_dir)
        if request.competitor.name == plan.waits_for_early:
            deadline = time.monotonic() + _EARLY_WAIT_SECONDS
            while not any(trained_early(Path(folder)) for folder in ran(self._settings.data_dir)) and time.monotonic() < deadline:
                time.sleep(0.05)
        seconds = plan.early_seconds if request.run_id < 0 else 0.0
        launch = Launch(argv=[sys.executable, "-c", _DEAF_SCRIPT, str(seconds)], env={}, cwd=request.run_dir,
                        log_dir=request.run_dir / "logs", budget_seconds=plan.budget_seconds, grace_seconds=plan.grace,
                        log_max_bytes=10_000, log_tail_chars=200)  # fmt: skip
        result = supervise(launch, _GroupTerminator, started)
        with (self._settings.data_dir / SCRIPTS).open("a") as log:
            log.write(f"{request.competitor.name}\t{request.run_dir}\t{result.finished_at}\t{(result.failure_reason or 'exited').splitlines()[0]}\n")
        if result.status != RunStatus.SUCCEEDED or request.competitor.name in plan.fails:
            status = RunStatus.FAILED if result.status == RunStatus.SUCCEEDED else result.status
            return RunReport(status, started, time.time(), log_path=launch.log_dir,
                             failure_reason=result.failure_reason or "crashed")  # fmt: skip
        return self._report(request.competitor, request.task, request.run_dir, started)
