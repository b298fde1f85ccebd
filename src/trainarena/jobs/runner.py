"""One attempt of one job, as small steps: start (choose the script, record the run and its attempt,
the ``started`` event) -> execute (prepare the file with the job's split, run the script in the
sandbox through the pipeline's executor, progress events from its logs) -> finish (store the run's
report; score the base model on the same held-out rows, ``jobs.base_score``; register the model and
end ``succeeded``, or end ``failed`` / ``cancelled``). Two ends store
no report and cost the job no try, the try withdrawn and the job queued again: a run the platform
could not start (``RunNotStarted``: a full disk, inputs not laid out, no cluster node that can hold
it; the job then waits, ``jobs.queue.withdraw``), and a try stopped because its worker is stopping
with its service (``jobs.queue.withdraw_stopped``).

The script is the reigning champion's of the task type's tournament kind when its manifest supports
the task type; otherwise (no champion yet, or one that does not train this type) the house script
(``workbench.house_script_dir``). The job records which: ``competitor_id``, or None for the house
script, and its ``started`` event names it.
"""

from __future__ import annotations

import errno
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from sqlalchemy.orm import Session

from trainarena.attempts import store_report
from trainarena.contract import RunStatus, TaskType
from trainarena.execution.disk import os_error_text
from trainarena.execution.output_tree import remove_tree
from trainarena.execution.supervise import StopAtOnce, stop_when
from trainarena.jobs.base_score import BaseScore, score_base_model
from trainarena.jobs.copies import remove_ended_copies
from trainarena.jobs.progress import Progress, ProgressReporter
from trainarena.jobs.queue import PlatformWait, requeue, set_script, still_mine, withdraw, withdraw_stopped
from trainarena.jobs.records import SERVICE_STOPPED, EventKind, add_event, close_run
from trainarena.jobs.split import JobPreparer
from trainarena.pipeline import unsupported_reason
from trainarena.records.recorder import recorder_for
from trainarena.registry import (
    ModelSource,
    SameAsBaseVerdict,
    base_comparison_fields,
    model_compared_with_base,
    model_same_as_base,
    model_same_as_base_refuted,
    register_model,
    run_measurement,
    same_as_base_verdict,
)
from trainarena.runs import LOGS_DIR, CompetitorInfo, RunInterrupted, RunNotStarted, RunReport, definition_json, task_key
from trainarena.settings import Settings
from trainarena.store import Store
from trainarena.store.adhoc import start_adhoc_run
from trainarena.store.models import AttemptStatus, Competitor, Job, JobStatus, Run, RunAttempt, RunOrigin, UploadedFile, utcnow
from trainarena.store.tournaments import current_champion
from trainarena.submissions import RegistrationError, checkout_path, register
from trainarena.tasks import builtin_assets, score_direction
from trainarena.tasks.base import DatasetError, TaskDefinition
from trainarena.wording import HOUSE_SCRIPT
from trainarena.workbench import house_script_dir, worktree_script

log = logging.getLogger(__name__)


class JobExecutor(Protocol):
    """What a job needs of ``pipeline.SandboxedExecutor`` (tests pass a fake): its run, and the base
    model's score on the same held-out rows (``jobs.base_score``)."""

    def run_task(self, competitor: CompetitorInfo, task: TaskDefinition, run_dir: Path, run_name: str) -> RunReport: ...

    def evaluate_base_model(self, task: TaskDefinition) -> RunReport: ...


class _AttemptStop(StopAtOnce):
    """Set to stop an attempt's run: with the grace any run gets when its customer cancels it, or at
    once when nothing of the try is kept (``kept_nothing``)."""

    kept_nothing = False

    def at_once(self) -> bool:
        return self.kept_nothing and self.is_set()


class StopRequest:
    """How a running attempt is asked to stop: cancelled by its customer (its run gets the sandbox's
    grace, ``sandbox.grace_seconds``), its worker stopping with its service, or its job lost to the
    queue (its worker missed its heartbeats). The last two kill the run at once (SIGKILL, no grace;
    on Ray through the node's stop file, ``cluster.node.request_stop``): the stopped try is
    withdrawn and its output removed, a lost one records nothing, so a grace would only hold the
    service's stop (or the job's next try) up for a run whose work is thrown away, and the contract
    forbids saving on SIGTERM anyway. A run waiting for its devices stops waiting (``jobs.gate``,
    ``execution.DevicePool``)."""

    def __init__(self) -> None:
        self.event = _AttemptStop()
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        self.event.set()

    def discard(self) -> None:
        """Stop the run at once: its worker stops with its service, or its job was lost to the queue."""
        self.event.kept_nothing = True
        self.event.set()


@dataclass(frozen=True)
class PlatformFault:
    """A try the platform could not start (``RunNotStarted``): why, and the job after its try was
    withdrawn (its status and its wait, ``jobs.queue.withdraw``); None: no longer this worker's."""

    reason: str
    withdrawn: PlatformWait | None


@dataclass(frozen=True)
class JobScript:
    info: CompetitorInfo
    competitor_id: int | None  # None: the house script


@dataclass(frozen=True)
class Attempt:
    """A started attempt: what runs, on what, and where its record is."""

    job_id: str
    task: TaskDefinition
    script: JobScript
    run_id: int
    number: int
    run_dir: Path
    validation_share: float


def choose_script(session: Session, settings: Settings, task_type: TaskType) -> JobScript:
    """The champion's script when it trains ``task_type``, else the house script (module docstring)."""
    kind = "image" if task_type == TaskType.IMAGE else "text"
    champion = current_champion(session, kind)
    if champion is not None:
        info = CompetitorInfo(champion.name, champion.repo_url, champion.commit, champion.tree_hash, champion.entrypoint)
        try:
            checkout = checkout_path(settings, champion.commit)
            if not checkout.is_dir():
                register(settings, name=champion.name, repo=champion.repo_url, commit=champion.commit)
            probe = TaskDefinition("probe", task_type, "", {}, 1.0)
            if unsupported_reason(checkout, probe) is None:
                return JobScript(info, champion.id)
        except RegistrationError:
            pass  # the champion's repository is gone: the house script trains the job
    house = worktree_script(settings, house_script_dir(settings, task_type), name=HOUSE_SCRIPT)
    return JobScript(house.info, None)


def resolve_model(settings: Settings, base_model: str, task_type: TaskType) -> str:
    """A ``trainarena:NAME`` built-in as its built path (built if missing); anything else as given."""
    if not builtin_assets.is_builtin(base_model):
        return base_model
    kind = builtin_assets.IMAGE if task_type == TaskType.IMAGE else builtin_assets.TEXT
    asset = builtin_assets.find_builtin(base_model, role=builtin_assets.MODEL, kind=kind)
    return str(builtin_assets.builtin_path(asset, settings.assets_dir))


class JobRunner:
    def __init__(self, settings: Settings, store: Store, executor: JobExecutor) -> None:
        self._settings = settings
        self._store = store
        self._executor = executor
        self._recorder = recorder_for(settings)

    def run(self, job_id: str, worker_id: str, stop: StopRequest) -> PlatformFault | None:
        """Run this worker's claimed job ``job_id`` to an end (or back to the queue). A job that cannot
        be started or recorded fails with the reason rather than being tried again and again. Once it
        has ended, the copies of its file's rows it made are removed (``jobs.copies``). Returns the
        platform's fault that kept its run from starting (its try withdrawn, the job queued again to
        wait or, after ``max_platform_faults``, failed), for the worker to back off; None otherwise."""
        try:
            return self._run(job_id, worker_id, stop)
        finally:
            remove_ended_copies(self._store, self._settings, [job_id])

    def _run(self, job_id: str, worker_id: str, stop: StopRequest) -> PlatformFault | None:
        try:
            attempt = self._start(job_id, worker_id)
        except Exception as error:  # noqa: BLE001 - a missing file, a broken house script, an asset that will not build
            self._fail(job_id, worker_id, f"could not start: {error}")
            return None
        try:
            report = self._execute(attempt, stop)
        except RunInterrupted as error:  # its node died (Ray): the job is queued again, a new attempt next time
            self._requeue(attempt, worker_id, str(error))
            return None
        except RunNotStarted as error:  # the platform's (a full disk, no node): no try of the customer's
            return self._withdraw(attempt, worker_id, str(error))
        if stop.event.is_set() and not stop.cancelled:  # its service stops (a lost job's try records nothing)
            self._withdraw_stopped(attempt, worker_id)
            return None
        try:
            self._finish(attempt, worker_id, report, stop)
        except Exception as error:  # noqa: BLE001 - e.g. the registry's disk is full
            self._fail(job_id, worker_id, f"could not record its end: {type(error).__name__}: {error}", attempt.number)
        return None

    def _requeue(self, attempt: Attempt, worker_id: str, reason: str) -> None:
        with self._store.transaction() as session:
            requeue(session, attempt.job_id, worker_id, reason, self._settings.jobs.max_attempts, attempt=attempt.number)
        remove_tree(attempt.run_dir / "output")  # recorded as interrupted: nothing of it is scored or kept; logs stay

    def _withdraw(self, attempt: Attempt, worker_id: str, reason: str) -> PlatformFault:
        with self._store.transaction() as session:
            withdrawn = withdraw(session, attempt.job_id, worker_id, attempt.number, reason, self._settings.jobs)
        remove_tree(attempt.run_dir / "output")  # recorded as withdrawn: nothing of it is scored or kept; logs stay
        return PlatformFault(reason, withdrawn)

    def _withdraw_stopped(self, attempt: Attempt, worker_id: str) -> None:
        with self._store.transaction() as session:
            withdraw_stopped(session, attempt.job_id, worker_id, attempt.number, SERVICE_STOPPED)
        remove_tree(attempt.run_dir / "output")  # recorded as withdrawn: nothing of it is scored or kept; logs stay

    def _fail(self, job_id: str, worker_id: str, reason: str, attempt: int | None = None) -> None:
        """End the job failed if it is still this worker's and, with ``attempt``, that try's."""
        with self._store.transaction() as session:
            if still_mine(session, worker_id, job_id, attempt):
                self._end(session, job_id, JobStatus.FAILED, EventKind.FAILED, f"failed: {reason}")

    def _start(self, job_id: str, worker_id: str) -> Attempt:
        with self._store.transaction() as session:
            job = session.get_one(Job, job_id)
            upload = session.get_one(UploadedFile, job.file_id)
            if upload.deleted_at is not None:
                raise DatasetError(f"its file {upload.id} was deleted before the job started")
            task_type = TaskType(job.task_type)
            task = TaskDefinition(name=job.id, task_type=task_type, base_model=resolve_model(self._settings, job.base_model, task_type),
                                  dataset={**job.field_mapping, "source": upload.path}, budget_seconds=job.budget_seconds,
                                  seed=job.seed)  # fmt: skip
            script = choose_script(session, self._settings, task_type)
            if not set_script(session, worker_id, job.id, script.competitor_id):
                raise RuntimeError("it is no longer this worker's job (queued again meanwhile)")
            run_id, number = self._record_attempt(session, job, task, script)
            add_event(session, job.id, EventKind.STARTED, f"started: {script.info.name} trains {job.task_type} on "
                      f"{job.base_model} (attempt {number})", script=script.info.name, competitor_id=script.competitor_id,
                      attempt=number)  # fmt: skip
            run_dir = self._settings.work_dir / "jobs" / job.id / f"attempt-{number}"
            return Attempt(job.id, task, script, run_id, number, run_dir, job.validation_share)

    def _record_attempt(self, session: Session, job: Job, task: TaskDefinition, script: JobScript) -> tuple[int, int]:
        """The job's run (created on its first attempt, origin ``job``) with a new running attempt. The run
        names this attempt's script, which its record identifies: the champion, or the snapshot of the
        house script that ran (an attempt after a new champion was crowned may run another)."""
        competitor = None if script.competitor_id is None else session.get_one(Competitor, script.competitor_id)
        if job.run_id is None:
            run = start_adhoc_run(session, origin=RunOrigin.JOB, definition=definition_json(task), digest=task_key(task),
                                  competitor=competitor)  # fmt: skip
            job.run_id, number = run.id, 1
        else:
            run = session.get_one(Run, job.run_id)
            number = run.attempts + 1
            run.status, run.competitor = RunStatus.RUNNING.value, competitor
            run.attempt_records.append(RunAttempt(number=number, status=AttemptStatus.RUNNING, started_at=utcnow()))
        submission_dir = script.info.submission_dir
        run.snapshot_path = None if competitor is not None or submission_dir is None else str(submission_dir)
        session.flush()
        return run.id, number

    def _execute(self, attempt: Attempt, stop: StopRequest) -> RunReport:
        started = time.time()
        if stop.event.is_set():
            return RunReport(RunStatus.FAILED, started, time.time(), failure_reason="stopped before it started")
        log_dir = attempt.run_dir / LOGS_DIR
        reporter = ProgressReporter(log_dir, self._settings.jobs, lambda progress: self._progress(attempt.job_id, progress))
        reporter.start()
        try:
            self._prepare(attempt)
            with stop_when(stop.event):
                return self._executor.run_task(attempt.script.info, attempt.task, attempt.run_dir,
                                               f"{attempt.job_id}-try{attempt.number}")  # fmt: skip
        except DatasetError as error:
            return RunReport(RunStatus.FAILED, started, time.time(), failure_reason=f"task: {error}")
        except (RunInterrupted, RunNotStarted):
            raise
        except Exception as error:  # noqa: BLE001 - the platform broke: the job fails with the reason, the worker goes on
            return RunReport(RunStatus.FAILED, started, time.time(), failure_reason=f"{type(error).__name__}: {error}")
        finally:
            reporter.stop()

    def _prepare(self, attempt: Attempt) -> None:
        """The attempt's folder and the job's splits. A full disk stops it as the platform's fault, as it
        stops a run whose inputs the pipeline could not lay out (the customer's file was checked on upload)."""
        try:
            attempt.run_dir.mkdir(parents=True, exist_ok=True)  # before any copy: jobs.copies sweeps by job folder
            JobPreparer(self._settings, attempt.validation_share, attempt.task.seed).prepare(attempt.task)
        except OSError as error:
            if error.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise RunNotStarted(f"could not prepare the data of {attempt.job_id}'s attempt {attempt.number}: "
                                f"{os_error_text(error, self._settings.data_dir)}") from None  # fmt: skip

    def _progress(self, job_id: str, progress: Progress) -> None:
        with self._store.transaction() as session:
            add_event(session, job_id, EventKind.PROGRESS, progress.message, lines=progress.lines)

    def _finish(self, attempt: Attempt, worker_id: str, report: RunReport, stop: StopRequest) -> None:
        if self._recorder is not None:
            self._recorder.warm(report, attempt.task)
        # Worked out before the transaction, which holds the store's write lock: checking a script's claim
        # that it kept the base model's weights reads every tensor of a full model, and scoring the base
        # model (after the run, outside its budget) is an evaluation. None: no model to register.
        verdict = None if stop.cancelled or not trained(report, attempt.validation_share) else self._same_as_base(attempt, report)
        base = None if verdict is None else score_base_model(self._executor, attempt.task, attempt.validation_share)
        with self._store.transaction() as session:
            if not still_mine(session, worker_id, attempt.job_id, attempt.number):
                return  # queued again meanwhile (this worker missed its heartbeats): another attempt counts
            store_report(session, attempt.run_id, attempt.number, report)
            if stop.cancelled:
                self._end(session, attempt.job_id, JobStatus.CANCELLED, EventKind.CANCELLED, "cancelled while it ran; the run was stopped")
            elif verdict is not None and base is not None:  # trained
                self._succeed(session, attempt, report, verdict, base)
            else:
                self._end(session, attempt.job_id, JobStatus.FAILED, EventKind.FAILED, f"failed: {report.failure_reason}",
                          run_status=report.status.value)  # fmt: skip
            # Last in the transaction: the log's lock is held only while the statements are appended.
            if self._recorder is not None:
                self._recorder.run_stored(session, attempt.run_id)

    def _same_as_base(self, attempt: Attempt, report: RunReport) -> SameAsBaseVerdict:
        # The task's base model is the job's, a built-in resolved to its folder (as the check finds it).
        task = attempt.task
        return same_as_base_verdict(self._settings, trained_artifact(report), task.task_type, task.base_model)

    def _succeed(self, session: Session, attempt: Attempt, report: RunReport, verdict: SameAsBaseVerdict, base: BaseScore) -> None:
        job = session.get_one(Job, attempt.job_id)
        upload = session.get_one(UploadedFile, job.file_id)
        evaluation = report.evaluation
        score = evaluation.score if attempt.validation_share > 0 and evaluation is not None else None
        measurement = run_measurement(session, attempt.run_id, job.id)
        if measurement is not None:  # the card keeps the base model's score beside how the job's was measured
            measurement = replace(measurement, base_score=base.score, base_missing=base.missing)
        model = register_model(self._settings, session, artifact_dir=trained_artifact(report), source=ModelSource.JOB,
                               task_type=job.task_type, base_model=job.base_model, dataset_digest=upload.sha256, score=score,
                               owner_key_id=job.owner_key_id, job_id=job.id, run_id=attempt.run_id,
                               competitor_id=attempt.script.competitor_id, same_as_base=verdict,
                               measurement=measurement)  # fmt: skip
        job.model_id, job.score = model.id, score
        compared = model_compared_with_base(model)
        # Which way is better said with the score: a customer reads no score column heading here.
        scored = "" if score is None else f"; score {score:.4g} on the validation share ({score_direction(job.task_type)} is better)"
        scored += "" if compared is None else f"; {compared.note}"
        # The script saved the base model's weights (or said so, and they differ): the customer is told here too.
        same = model_same_as_base(model) or model_same_as_base_refuted(model)
        scored += "" if same is None else f"; {same}"
        self._end(session, job.id, JobStatus.SUCCEEDED, EventKind.FINISHED, f"finished: model {model.id}{scored}",
                  model_id=model.id, score=score, **base_comparison_fields(compared))  # fmt: skip

    def _end(self, session: Session, job_id: str, status: str, kind: str, message: str, **data: object) -> None:
        """End the job; a run left without its report (``_fail`` after a rolled-back ``_finish``) is closed."""
        job = session.get_one(Job, job_id)
        job.status, job.finished_at, job.worker_id = status, utcnow(), None
        if status == JobStatus.FAILED:
            job.failure_reason = message.removeprefix("failed: ")
        close_run(session, job, job.failure_reason or message)
        add_event(session, job_id, kind, message, **data)


def trained_artifact(report: RunReport) -> Path:
    """The checked artifact of a trained run's report. The pipeline names it in every such report; one
    without it is the platform's fault (its executor's), said in words, never the script's."""
    if report.artifact_path is None:
        raise RuntimeError(f"the executor reported the run {report.status.value} but named no artifact folder; "
                           "the platform lost what the script saved")
    return report.artifact_path


def trained(report: RunReport, validation_share: float) -> bool:
    """Whether the run left a model for the customer. With a validation share that is a succeeded run.
    With none, the pipeline's evaluation scored rows the script trained on (``jobs.split``): it is not
    the job's result, so a checked artifact whose evaluation failed is still the customer's model."""
    if report.status == RunStatus.SUCCEEDED:
        return True
    evaluation_only = report.status == RunStatus.INVALID and (report.failure_reason or "").startswith("evaluation:")
    return validation_share == 0 and evaluation_only and report.artifact_digest is not None
