"""What the early-runs tests' executors share (tests/test_early_runs.py, tests/test_early_runs_stopped.py):
a tournament's task source and competitors, and an executor that records every run it is given
before its test's script decides how the run ends."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from trainarena.contract import Direction, RunStatus, TaskType
from trainarena.engine.model import Stage
from trainarena.execution.supervise import STOPPED_REASON, current_stop_event
from trainarena.runs import RunReport, RunRequest
from trainarena.store import add_competitor
from trainarena.tasks.base import Evaluation, TaskDefinition

CHAMPION = "king"
WAIT_SECONDS = 10.0  # the most any run here waits for what it waits for (another slot's early run, its stop)


def task_source(kind: str, stage: Stage, match_id: str, task_index: int, seed: int) -> TaskDefinition:
    return TaskDefinition(f"{stage}-{match_id}-{task_index}", TaskType.INSTRUCT, "tiny", {"source": "fake"}, 1.0, seed)


def add_competitors(session: Session, *names: str) -> None:
    for name in names:
        add_competitor(session, name=name, repo_url=f"https://example.org/{name}.git", commit="f" * 40,
                       tree_hash=f"tree-{name}", source_digest=f"digest-{name}", entrypoint="train.py")  # fmt: skip


def succeeded(loss: float, log_path: Path | None = None) -> RunReport:
    return RunReport(RunStatus.SUCCEEDED, 0.0, 1.0, log_path=log_path,
                     evaluation=Evaluation(loss, Direction.LOWER, per_example=(loss,)))  # fmt: skip


@dataclass
class RecordingExecutor:
    """Records each run it is given in ``runs`` (under ``lock``: slots execute at once), gives it a log
    naming it (logs/stdout.log, as a script's output), and sets ``early_started`` when it is an early
    run (a provisional, negative run id); then :meth:`play` says how it ends."""

    runs: list[RunRequest] = field(default_factory=list)
    early_started: threading.Event = field(default_factory=threading.Event)
    stopped: list[RunRequest] = field(default_factory=list)  # runs that saw their stop (:meth:`until_stopped`)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def execute(self, request: RunRequest) -> RunReport:
        self.record(request)
        return self.play(request)

    def record(self, request: RunRequest) -> None:
        assert request.run_dir.is_dir()  # the drive made it, early or claimed
        with self.lock:
            self.runs.append(request)
        (request.run_dir / "logs").mkdir(exist_ok=True)
        (request.run_dir / "logs" / "stdout.log").write_text(f"{request.run_name}\n")
        if request.run_id < 0:
            self.early_started.set()

    def play(self, request: RunRequest) -> RunReport:
        raise NotImplementedError

    def until_stopped(self, request: RunRequest) -> RunReport:
        """A script that would train for a long while, ended as the sandbox ends one (polling its stop,
        WAIT_SECONDS at most); ``request`` is added to ``stopped`` when its stop was seen."""
        stop, deadline = current_stop_event(), time.monotonic() + WAIT_SECONDS
        while stop is not None and not stop.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        if stop is not None and stop.is_set():
            with self.lock:
                self.stopped.append(request)
        return RunReport(RunStatus.FAILED, 0.0, 1.0, failure_reason=STOPPED_REASON)
