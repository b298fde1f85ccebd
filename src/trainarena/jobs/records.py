"""Jobs in the store: created after every field is checked, listed and read by their owner, cancelled,
their events (the SSE stream's source), and the closing of a job's run when the job ends without a
report to store. The worker's side (claiming, heartbeats, requeueing) is in ``jobs.queue``."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, object_session

from trainarena.attempts import interrupt_running_attempts
from trainarena.contract import RunStatus, TaskType
from trainarena.jobs.base_score import NO_VALIDATION_ROWS
from trainarena.jobs.errors import Conflict, InvalidInput, NotFound
from trainarena.jobs.files import Page, get_file, owned_page, owned_row
from trainarena.jobs.split import job_data_rules
from trainarena.jobs.uploads import check_dataset, kind_of, parse_task_type
from trainarena.registry import BaseComparison, base_comparison_fields, model_compared_with_base, model_same_as_base, not_compared
from trainarena.settings import Settings
from trainarena.store.models import AttemptStatus, Job, JobEvent, JobStatus, RegisteredModel, Run, database_now, utcnow
from trainarena.tasks import builtin_assets
from trainarena.wording import HOUSE_SCRIPT, counted, with_article

# Why a try was withdrawn when its service stopped: its worker stopped it (the first stop signal), or
# the process left at once (a second one). The platform's doing, not the customer's, so it costs no
# try; but no sign of the platform's health either, so it neither counts as a platform fault nor makes
# the job wait (``jobs.queue.platform_faults``), which is how the queue tells these withdrawals apart.
SERVICE_STOPPED = "the service stopped"
SERVICE_STOPPED_AT_ONCE = "the service was stopped at once (a second stop signal)"
SERVICE_STOPS = (SERVICE_STOPPED, SERVICE_STOPPED_AT_ONCE)


class EventKind:
    QUEUED = "queued"
    STARTED = "started"
    PROGRESS = "progress"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"
    FINAL = (FINISHED, FAILED, CANCELLED)


def new_job_id() -> str:
    return "job-" + secrets.token_hex(8)


@dataclass(frozen=True)
class JobRequest:
    """What a customer asks for (POST /v1/jobs); checked by :func:`create_job`."""

    task_type: str
    base_model: str
    file_id: str
    field_mapping: dict[str, Any] = field(default_factory=dict)
    budget_tier: str | None = None  # None: JobRules.default_tier
    validation_share: float = 0.0
    seed: int = 0


def add_event(session: Session, job_id: str, kind: str, message: str, **data: Any) -> JobEvent:
    event = JobEvent(job_id=job_id, kind=kind, message=message, data=data, at=utcnow())
    session.add(event)
    session.flush()
    return event


def create_job(session: Session, settings: Settings, request: JobRequest, owner_key_id: int) -> Job:
    """Check every field (InvalidInput naming it) and record the job queued, with its ``queued`` event.
    The file is prepared as the task would be (``task check``), so a bad mapping fails here, not later."""
    rules = settings.jobs
    task_type = parse_task_type(request.task_type)
    _check_base_model(request.base_model, task_type, rules.base_models)
    tier = request.budget_tier or rules.default_tier
    if tier not in rules.budget_tiers:
        tiers = ", ".join(f"{name} ({seconds:g} s)" for name, seconds in sorted(rules.budget_tiers.items(), key=lambda item: item[1]))
        raise InvalidInput(f"budget_tier {tier!r} is not one of the tiers (jobs.budget_tiers): {tiers}", field="budget_tier")
    if not 0.0 <= request.validation_share <= rules.validation_share_max:
        raise InvalidInput(f"validation_share must be between 0 and {rules.validation_share_max:g} (jobs.validation_share_max), "
                           f"got {request.validation_share:g}", field="validation_share")  # fmt: skip
    try:
        upload = get_file(session, request.file_id, owner_key_id)
    except NotFound:
        upload = None
    if upload is None:
        raise InvalidInput(f"no file {request.file_id} (upload one with POST /v1/files)", field="file_id")
    if upload.deleted_at is not None:
        raise InvalidInput(f"file {upload.id} was deleted ({upload.deleted_at:%Y-%m-%d %H:%M} UTC); upload the data again "
                           "with POST /v1/files and use the new id", field="file_id")  # fmt: skip
    if upload.kind != kind_of(task_type):
        raise InvalidInput(f"file {upload.id} is {with_article(upload.kind)} dataset; {with_article(task_type.value)} job "
                           f"needs {with_article(kind_of(task_type))} one", field="file_id")  # fmt: skip
    split_rules = job_data_rules(settings.data, request.validation_share, request.seed)
    checked = check_dataset(settings.model_copy(update={"data": split_rules}), task_type, Path(upload.path), upload.filename,
                            request.field_mapping, base_model=request.base_model)  # fmt: skip
    if request.validation_share > 0 and checked.hidden_rows < rules.validation_rows_min:
        raise InvalidInput(f"validation_share {request.validation_share:g} holds out {counted(checked.hidden_rows, 'row')} of "
                           f"{checked.train_rows + checked.hidden_rows}, fewer than {rules.validation_rows_min} "
                           "(jobs.validation_rows_min): a score on so few says little; give a larger share, or 0 to "
                           "train on every row", field="validation_share")  # fmt: skip
    job = Job(id=new_job_id(), owner_key_id=owner_key_id, file_id=upload.id, task_type=task_type.value,
              base_model=request.base_model, field_mapping=dict(request.field_mapping), budget_tier=tier,
              budget_seconds=rules.budget_tiers[tier], validation_share=request.validation_share, seed=request.seed,
              status=JobStatus.QUEUED, created_at=utcnow())  # fmt: skip
    session.add(job)
    session.flush()
    add_event(session, job.id, EventKind.QUEUED, f"queued: {task_type.value} on {request.base_model}, budget {tier} ({job.budget_seconds:g} s)")
    return job


def _check_base_model(value: str, task_type: TaskType, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InvalidInput(f"base_model {value!r} is not on the operator's list: {list(allowed)}", field="base_model")
    if builtin_assets.is_builtin(value):
        kind = builtin_assets.IMAGE if task_type == TaskType.IMAGE else builtin_assets.TEXT
        try:
            builtin_assets.find_builtin(value, role=builtin_assets.MODEL, kind=kind)
        except builtin_assets.BuiltinAssetError as error:
            raise InvalidInput(f"base_model: {error}", field="base_model") from None


def job_script(job: Job) -> str | None:
    """Whose script trains ``job``, as the API and the dashboard say it: the champion's name, or
    :data:`HOUSE_SCRIPT` for a run without a competitor; None until a run is started."""
    if job.run_id is None:
        return None
    return job.competitor.name if job.competitor is not None else HOUSE_SCRIPT


def _model(job: Job) -> RegisteredModel | None:
    if job.model_id is None:
        return None
    session = object_session(job)
    assert session is not None  # read while its session is open, as every view of a job is
    return session.get(RegisteredModel, job.model_id)


def job_same_as_base(job: Job) -> str | None:
    """For a job whose script saved the base model's weights unchanged (it found no improvement), the
    note its model's card has (``registry.model_same_as_base``); None for any other job."""
    model = _model(job)
    return None if model is None else model_same_as_base(model)


def job_compared_with_base(job: Job) -> BaseComparison | None:
    """The job's score against the untrained base model's on the same validation rows, as its model's
    card keeps it (``jobs.base_score``); for a job that keeps no validation rows, why it has none, from
    its creation on; None while a job with validation rows has no model (not finished, or failed)."""
    model = _model(job)
    compared = None if model is None else model_compared_with_base(model)
    if compared is None and job.validation_share == 0:
        return BaseComparison(None, None, not_compared(NO_VALIDATION_ROWS))
    return compared


def job_base_fields(job: Job) -> dict[str, Any]:
    """:func:`job_compared_with_base` as the API's and the CLI's job records carry it: ``base_score``,
    ``improvement``, ``base_comparison``."""
    return base_comparison_fields(job_compared_with_base(job))


def not_before(job: Job) -> datetime | None:
    """While the job is queued again after the platform could not start its try: the time (the
    store's clock, UTC) before which no worker claims it (``jobs.queue.withdraw``); else None."""
    return job.not_before if job.status == JobStatus.QUEUED else None


def waiting_reason(job: Job, stale_seconds: float) -> str | None:
    """Why a queued job waits after its last try was withdrawn (``jobs.queue``): the platform could not
    start it (and when it is tried again), or its service stopped during it; or why a running job
    waits: its worker has not beaten for ``stale_seconds`` (it died, and no worker has found it yet);
    as the API, the CLI and the dashboard show it. None for any other job."""
    session = object_session(job)
    assert session is not None  # read while its session is open, as every view of a job is
    # The store's clock, as ``requeue_stale`` reads its cutoff.
    beat = job.heartbeat_at  # None where no worker has beaten for it
    if job.status == JobStatus.RUNNING and beat is not None and beat < database_now(session) - timedelta(seconds=stale_seconds):
        return (f"its worker stopped beating at {_clock(beat)}; a running `trainarena serve` or "
                "`trainarena api` queues it again")
    if job.status != JobStatus.QUEUED or job.run_id is None:
        return None
    attempts = session.get_one(Run, job.run_id).attempt_records
    last = attempts[-1] if attempts else None
    if last is None or last.status != AttemptStatus.WITHDRAWN:
        return None
    if last.failure_reason in SERVICE_STOPS:
        return f"{last.failure_reason} during its last try; it is tried again when a job worker runs, not counted as a try"
    waits_until = job.not_before
    when = "" if waits_until is None else f" after {_clock(waits_until)}"
    return f"the platform could not start its last try: {last.failure_reason}; it is tried again{when}, not counted as a try"


def _clock(moment: datetime) -> str:
    """``moment`` as a person reads it near now: the time of day, with the date when it is not today's (UTC)."""
    return f"{moment:%H:%M:%S} UTC" if moment.date() == utcnow().date() else f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def list_jobs(session: Session, owner: int | None, *, after: str | None = None, limit: int | None = 100,
              offset: int = 0) -> Page:  # fmt: skip
    """Jobs of ``owner`` (every owner's when None), newest first."""
    return owned_page(session, Job, owner, after=after, limit=limit, offset=offset)


def get_job(session: Session, job_id: str, owner: int | None) -> Job:
    return owned_row(session, Job, "job", job_id, owner)


def cancel_job(session: Session, job_id: str, owner: int | None) -> Job:
    """A queued job ends cancelled now; a running one is flagged, and its worker stops the run and
    ends it cancelled (within ``JobRules.poll_seconds``). Conflict when it has finished. A job queued
    again after a try still has its copies: the caller removes them once this is committed
    (``jobs.copies.remove_ended_copies``)."""
    job = get_job(session, job_id, owner)
    now = utcnow()
    # Conditional on the status: a worker claiming the job at this moment either sees it cancelled or
    # has already made it running, never both.
    cancelled = session.execute(update(Job).where(Job.id == job_id, Job.status == JobStatus.QUEUED)
                                .values(status=JobStatus.CANCELLED, finished_at=now, cancel_requested=True))  # fmt: skip
    if cancelled.rowcount == 1:
        tried = job.run_id is not None  # queued again after a try: its run ends with it
        close_run(session, job, "the job was cancelled before it was tried again")
        add_event(session, job_id, EventKind.CANCELLED, "cancelled before it was tried again" if tried else "cancelled before it started")
    else:
        session.refresh(job)
        if job.status in JobStatus.FINISHED:
            raise Conflict(f"job {job_id} has ended ({job.status}); only queued or running jobs can be cancelled",
                           job_status=job.status)  # fmt: skip
        job.cancel_requested = True
    session.flush()
    session.refresh(job)
    return job


def close_run(session: Session, job: Job, reason: str) -> None:
    """The run of a job that ends without a report stored (failed after its last try, cancelled while
    queued again or while its worker was gone, its end not recordable): a running attempt is
    interrupted and a run not finished fails with ``reason``, as a tournament gives up a run, so no
    ended job leaves its run ``running``. Nothing to do for a job never started or a stored report."""
    if job.run_id is None:
        return
    run = session.get_one(Run, job.run_id)
    interrupt_running_attempts(run, reason)
    if not RunStatus(run.status).finished:
        run.status, run.abandoned_reason = RunStatus.FAILED.value, reason


def events_after(session: Session, job_id: str, after_id: int = 0) -> list[JobEvent]:
    """The job's events with an id above ``after_id``, oldest first."""
    return list(session.scalars(select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.id > after_id).order_by(JobEvent.id)))
