"""The types a tournament run passes between the orchestrator (which drives a tournament) and the
pipeline (which executes one run): what to run, what came of it, and the executor interface between
them. Plain frozen data, so the two stay siblings that import only this module, not each other."""

from __future__ import annotations

import hashlib
import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from trainarena.contract import RunStatus, TaskType
from trainarena.engine.model import Stage
from trainarena.execution.output_tree import remove_tree
from trainarena.tasks.base import Evaluation, TaskDefinition

logger = logging.getLogger(__name__)

__all__ = [
    "CompetitorInfo", "PendingEvaluation", "ProgressEvent", "RunExecutor", "RunInterrupted", "RunNotStarted", "RunReport",
    "RunRequest", "StagedExecutor", "LOGS_DIR", "RESULT_FILE_NAME", "SUBMISSION_CHANGED_REASON", "SubmissionChanged", "TIMINGS_FILE",
    "TaskSource", "definition_digest", "definition_json", "record_timings", "stopped_report", "task_key",
]

# A run folder's timings, written by the platform where it does each step (docs/benchmarks.md#overhead).
TIMINGS_FILE = "timings.json"
# A run folder's logs (stdout.log, stderr.log, sandbox.txt), written by the sandbox as the script runs.
LOGS_DIR = "logs"
# A stored run's folder: what `runs show --json` prints (reporting.run_detail.write_result_json).
RESULT_FILE_NAME = "result.json"

# (tournament kind, stage, match id, task index, task seed) -> the task to play.
TaskSource = Callable[[str, Stage, str, int, int], TaskDefinition]


def definition_digest(task: TaskDefinition) -> str:
    """Content address of a task definition: the same definition always prepares the same splits."""
    data = definition_json(task)
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:24]


def definition_json(task: TaskDefinition) -> dict[str, Any]:
    """A task definition as the store keeps it (the task row's ``definition``); an ad-hoc task's absent
    split key is left out, so definitions stored before split keys existed keep their digests, and so is
    ``public_noise`` (how an audit scores a run, not part of the task)."""
    data = {**asdict(task), "task_type": task.task_type.value}
    del data["public_noise"]
    if data["split_key"] is None:
        del data["split_key"]
    return data


def definition_from_json(data: dict[str, Any]) -> TaskDefinition:
    """The inverse of :func:`definition_json` (a definition without a split key gets none)."""
    return TaskDefinition(**{**data, "task_type": TaskType(data["task_type"])})


def task_key(task: TaskDefinition) -> str:
    """What identifies a task for comparing scores (references, leaderboards): its definition's digest
    with the seed left out, since the seed only reaches the script (the split and the scoring do not
    depend on it), so runs of one task under several seeds are runs of the same task."""
    return definition_digest(replace(task, seed=0))


@dataclass(frozen=True)
class CompetitorInfo:
    """A competitor as an executor needs it (plain data: no ORM row crosses into a worker thread).
    ``submission_dir`` is set for a script that is not registered (a snapshot of a working tree, the
    house script): the executor binds that folder instead of the registered commit's checkout."""

    name: str
    repo_url: str
    commit: str
    tree_hash: str
    entrypoint: str
    submission_dir: Path | None = None


@dataclass(frozen=True)
class RunRequest:
    tournament_id: int
    tournament_name: str
    run_id: int
    attempt: int  # 1 for the first try; higher after an interrupted try
    task_id: int  # the same for every competitor on this task: a key to prepare its data once
    competitor: CompetitorInfo
    stage: Stage
    match_id: str
    task_index: int
    task: TaskDefinition
    run_dir: Path  # fresh, empty directory for this attempt, under the settings' work_dir

    @property
    def run_name(self) -> str:
        """The name the script is given (``task.json``'s ``run_id``): from the run's place, not its
        store id, so a run trained early (``early_runs``), before its row exists, gets the same name."""
        return f"{self.tournament_name}-{self.match_id}-t{self.task_index}-{self.competitor.name}-try{self.attempt}"


@dataclass(frozen=True)
class RunReport:
    """What an executor reports for one run. ``evaluation`` is None when no artifact was scored."""

    status: RunStatus
    started_at: float  # unix seconds
    finished_at: float
    log_path: Path | None = None
    artifact_path: Path | None = None
    artifact_digest: str | None = None  # sha256 hex of the artifact
    failure_reason: str | None = None
    evaluation: Evaluation | None = None
    prepared_paths: dict[str, Any] | None = None  # PreparedTask.to_json(): where the data is, rows dropped; kept on the task
    # Seconds of each step of the run (prepare, sandbox, script, artifact_check, eval_startup, eval_compute):
    # how long the platform took around the script. Not part of the record (they vary run to run).
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def wall_seconds(self) -> float:
        return self.finished_at - self.started_at


class RunInterrupted(RuntimeError):
    """An executor lost a run's try to the platform, not to the competitor: the machine executing it
    (a Ray node) died under it. The message says which and how. The try is recorded as an interrupted
    attempt with that message and the run is tried again at once, in a fresh attempt."""


# How the reason begins of a try not scored because its submission's cached files changed (``SubmissionChanged``):
# "... during the run (what changed)", or "... before the run started".
SUBMISSION_CHANGED_REASON = "the submission's files changed"


class SubmissionChanged(RunInterrupted):
    """The run's submission folder (a registered commit's checkout, a working tree's snapshot) is not
    the code its record would name: it changed between the check before the run and the sandbox's end
    (``submissions.seal``), or no longer matched its digest before the run and could not be made
    afresh. The sandbox binds it read-only, so the platform's side changed it, not the script: as any
    lost try, it is recorded as interrupted and tried again in a fresh attempt, from a fresh copy (the
    changed one is removed). Where nothing is tried again (``trainarena run``, an audit) the run is
    stored as failed, with this as its reason (``stopped_report``)."""


class RunNotStarted(RuntimeError):
    """An executor could not start a run for a reason of the platform's, not the competitor's: no node
    of its cluster can hold it (``cluster.resources``), or none came alive in time. Nothing of the
    competitor's ran. The drive stops with it, naming the reason, and the run's claimed attempt is
    withdrawn (``attempts.withdraw_attempt``), so a platform without the node it needs never costs a
    competitor a try; driven again, the run is claimed afresh."""


class DiskFull(RunNotStarted):
    """A run failed while the file system holding its folder had (nearly) no free space left, its own
    output under its cap: the platform's full disk, not the competitor's failure. As a run not
    started, its attempt is withdrawn and the drive stops, naming the file system and its free space;
    driven again once space was freed, the run is played again."""


class DriverStopped(BaseException):
    """The driver's process was told to stop (SIGINT or SIGTERM, which the CLI turns into this on the
    driving thread): the drive ends its runs in flight at once, records their attempts as withdrawn
    (the platform's own stop costs no competitor a try), releases the lease and raises it on. A
    ``BaseException``, as ``KeyboardInterrupt`` is, so no ``except Exception`` on the way holds it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name


# Modules whose code a DriverStopped must not cut through: raised inside a database driver's call it
# can leave the connection, and its SQLite write lock, held, so the drive's own clean-up (withdrawing
# the attempts, releasing the lease) and its lease keeper waited on the busy timeout.
_DATABASE_MODULES = ("sqlalchemy", "sqlite3", "psycopg")
_SIGNAL_RETRY_SECONDS = 0.05


def deferred_in_database_call(signum: int, frame: FrameType | None) -> bool:
    """For a stop signal's handler: when the interrupted ``frame`` is inside a database call, send the
    signal to the main thread again a moment later, once the call is likely over, and say so (the
    handler then returns without raising). A signal handler runs on the main thread."""
    while frame is not None:
        if str(frame.f_globals.get("__name__", "")).startswith(_DATABASE_MODULES):
            main = threading.main_thread().ident
            retry = threading.Timer(_SIGNAL_RETRY_SECONDS, signal.pthread_kill, (main, signum))
            retry.daemon = True
            retry.start()
            return True
        frame = frame.f_back
    return False


class RunExecutor(Protocol):
    def execute(self, request: RunRequest) -> RunReport:
        """Run one competitor on one task and evaluate the artifact. A competitor's failure is a
        report (FAILED, TIMED_OUT, INVALID); :class:`RunInterrupted` means the try was lost and is tried
        again; :class:`RunNotStarted` that it never started (its attempt is withdrawn and the drive stops);
        raising anything else means the platform itself broke, and the run is tried again when the
        tournament is resumed."""
        ...


class PendingEvaluation(Protocol):
    def finish(self) -> RunReport:
        """Score the artifact of a run whose script is done; the run's final report."""
        ...


class StagedExecutor(RunExecutor, Protocol):
    """An executor whose runs come in two steps, so the orchestrator can start the next script while the
    last artifact is scored: ``execute(r)`` is ``train(r)``, then ``finish()`` of what it returned when
    that is a :class:`PendingEvaluation`. Optional hooks, called on the thread that scores: ``warm_up(task)``
    when a drive claims its first run, ``end_scoring()`` when it ends."""

    def train(self, request: RunRequest) -> RunReport | PendingEvaluation: ...


def record_timings(run_dir: Path, timings: dict[str, Any]) -> None:
    """Add ``timings`` to the run folder's :data:`TIMINGS_FILE` (steps recorded later add to it)."""
    path = run_dir / TIMINGS_FILE
    known = json.loads(path.read_text()) if path.is_file() else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(known | timings, indent=2, sort_keys=True))


@dataclass(frozen=True)
class ProgressEvent:
    """``kind`` is run_started, run_finished, run_interrupted (tried again), run_not_started (no node could
    hold it: withdrawn, and the drive stops), round_created, resumed (a drive took up a tournament left
    mid-way, at ``round_index``) or finished."""

    kind: str
    tournament: str
    tournament_id: int | None = None  # resumed
    round_index: int | None = None
    stage: Stage | None = None
    match_id: str | None = None
    competitor: str | None = None
    task_index: int | None = None
    task_name: str | None = None
    budget_seconds: float | None = None
    status: RunStatus | None = None
    score: float | None = None
    runs_total: int | None = None  # round_created: runs in the round; resumed: its runs left to play
    runs_interrupted: int | None = None  # resumed: runs an earlier driver left running, played again
    cut_short: tuple[str, ...] = ()  # resumed: those runs, each as "competitor on task"
    reason: str | None = None  # run_finished: the whole failure reason of a run that failed (readers shorten it)


def stopped_report(error: BaseException, started: float, run_dir: Path) -> RunReport:
    """The report of a run that ``error`` (an exception, Ctrl-C) stopped before its executor reported:
    failed, naming the error, with the logs the sandbox wrote under ``run_dir`` so far, which show how
    far the script got (a run stored without them said it kept no log)."""
    logs = run_dir / LOGS_DIR
    kept = logs.is_dir() and any(logs.iterdir())
    if isinstance(error, SubmissionChanged):  # it did finish, but not as the code its record names
        reason = str(error)
    else:
        reason = f"stopped before it finished: {type(error).__name__}: {error}".rstrip(": ")
    return RunReport(RunStatus.FAILED, started, time.time(), log_path=logs if kept else None, failure_reason=reason)


def tournament_dir(work_dir: Path, tournament_id: int) -> Path:
    """A tournament's work folder: its runs' attempts, its early runs (``early_runs``), the notes of
    withdrawals its stopped drivers could not store (``withdrawal_notes``)."""
    return work_dir / f"tournament-{tournament_id}"


def attempt_dir(work_dir: Path, tournament_id: int, run_id: int, attempt: int) -> Path:
    """The folder of a tournament run's attempt: its inputs, output and logs."""
    return tournament_dir(work_dir, tournament_id) / f"run-{run_id}" / f"attempt-{attempt}"


def remove_empty_folders(folder: Path, up_to: Path) -> None:
    """``folder`` and each folder above it up to ``up_to`` (included), while it is empty: one holding
    anything (another run, logs, a note) stays, and so do those above it."""
    above = [folder, *folder.parents]
    for empty in above[: above.index(up_to) + 1]:
        try:
            empty.rmdir()
        except FileNotFoundError:  # never made
            continue
        except OSError:  # not empty
            return


def clear_stale_folder(run_dir: Path) -> None:
    """A newly claimed attempt's folder is empty: one already there is from another store (a store reset
    while its work folder was kept numbers runs from 1 again), and an old artifact in it would pass
    for this attempt's when its script writes nothing."""
    if run_dir.exists():
        logger.warning("removing %s, left by another store: a new attempt's folder starts empty", run_dir)
        remove_tree(run_dir)  # iterative: a folder a script nested thousands deep is removed too
