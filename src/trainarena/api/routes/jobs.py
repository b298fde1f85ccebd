"""``/v1/jobs``: customers' training jobs, created (within the key's quotas, ``jobs.quotas``; every field
checked, the file prepared as the task would be), listed, read, cancelled, and their events streamed
as server-sent events. A customer sees only its own jobs (another's is a 404); an operator sees every
job."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from trainarena.api.auth import Customer, Principal, quota_owner, visible_owner
from trainarena.api.context import app_settings, app_store
from trainarena.api.errors import BODY_RESPONSES, ERROR_RESPONSES, ROLE_RESPONSES, STORE_INT_MAX, ApiError, quota_response
from trainarena.api.job_errors import answering_jobs_errors
from trainarena.api.json_body import RequestBody
from trainarena.api.paging import CursorWindow
from trainarena.api.routes.models import BaseComparisonOut
from trainarena.api.routes.runs import LOG_RESPONSES, FullLog, LogStream, RunOutcomeOut, run_log_text
from trainarena.api.shown import shown_to
from trainarena.contract import SEED_MAX
from trainarena.jobs import (
    EventKind,
    JobRequest,
    cancel_job,
    create_job,
    events_after,
    get_job,
    job_base_fields,
    job_same_as_base,
    job_script,
    list_jobs,
    not_before,
    remove_ended_copies,
    waiting_reason,
)
from trainarena.jobs.quotas import JOBS_SETTING, MODEL_SETTING, check_new_job, quota_transaction
from trainarena.reporting.run_detail import RESULT_TAIL_LINES, read_run_detail
from trainarena.store import Store
from trainarena.store.models import Job, JobEvent, JobStatus

router = APIRouter(prefix="/v1", tags=["jobs"])


class JobIn(RequestBody):
    task_type: str = Field(description="instruct, chat, dpo, grpo or image.")
    base_model: str = Field(description="One of the operator's allowed base models (settings jobs.base_models).")
    file_id: str = Field(description="An uploaded file of yours (POST /v1/files).")
    field_mapping: dict[str, Any] = Field(default_factory=dict, description="The task type's dataset fields, e.g. "
                                          "{\"field_instruction\": \"q\", \"field_output\": \"a\"} for instruct.")  # fmt: skip
    budget_tier: str | None = Field(None, description="A budget tier (settings jobs.budget_tiers); default jobs.default_tier.")
    validation_share: float = Field(0.0, description="Share of the rows held out and scored; 0 trains on every row, no score.")
    seed: int = Field(0, ge=0, le=SEED_MAX, description=f"Seed of the split and of the script: 0 to {SEED_MAX}.")


class JobOut(BaseComparisonOut):
    id: str
    object: str = Field("job", description="Always job.")
    status: str = Field(description="queued, running, succeeded, failed or cancelled.")
    task_type: str
    base_model: str
    file_id: str
    field_mapping: dict[str, Any]
    budget_tier: str
    budget_seconds: float
    validation_share: float
    seed: int
    script: str | None = Field(description="Whose script trains it: the champion's name or 'house script' (None until started).")
    competitor_id: int | None = Field(description="The champion whose script trains it; None for the house script.")
    run_id: int | None
    model_id: str | None = Field(description="The registered model, once succeeded.")
    score: float | None = Field(description="Score on the validation share (none when validation_share is 0).")
    failure_reason: str | None
    same_as_base: str | None = Field(description="Set when the job succeeded but its training script found no improvement over "
                                     "the base model and saved the base model's weights unchanged: the sentence saying so, "
                                     "with the script's reason (as the model's card says it); else null.")
    waiting_reason: str | None = Field(description="Set while a queued job waits because its last try was withdrawn, not counted: "
                                       "the platform could not start it (a full disk, no cluster node that can hold it; and "
                                       "when it is tried again), or the service stopped during it: why; or while a running "
                                       "job's worker has stopped beating (it died) and no worker has queued it again yet.")
    not_before: datetime | None = Field(description="Set while a queued job waits after the platform could not start its last "
                                        "try: no worker takes it before this time (UTC).")
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, job: Job, principal: Principal, request: Request) -> JobOut:
        """``job`` as ``principal`` reads it (``api.shown``: a customer's key reads no path on the server,
        but for its base model: one of jobs.base_models, which the customer named itself)."""
        fields = cls._fields(job, app_settings(request).jobs.stale_seconds)
        return cls(**{**shown_to(principal, request, fields), "base_model": job.base_model})

    @staticmethod
    def _fields(job: Job, stale_seconds: float) -> dict[str, Any]:
        script = job_script(job)
        return dict(id=job.id, status=job.status, task_type=job.task_type, base_model=job.base_model, file_id=job.file_id,
                    field_mapping=job.field_mapping, budget_tier=job.budget_tier, budget_seconds=job.budget_seconds,
                    validation_share=job.validation_share, seed=job.seed, script=script, competitor_id=job.competitor_id,
                    run_id=job.run_id, model_id=job.model_id, score=job.score, failure_reason=job.failure_reason,
                    same_as_base=job_same_as_base(job), **job_base_fields(job),
                    waiting_reason=waiting_reason(job, stale_seconds), not_before=not_before(job), cancel_requested=job.cancel_requested, created_at=job.created_at,
                    started_at=job.started_at, finished_at=job.finished_at)  # fmt: skip


class JobList(BaseModel):
    object: str = "list"
    data: list[JobOut]
    has_more: bool = Field(description="Older jobs follow; pass the last id as `after`.")


@router.post("/jobs", status_code=201, response_model=JobOut, summary="Create a training job",
             responses={**ROLE_RESPONSES, **BODY_RESPONSES, 409: quota_response(JOBS_SETTING, MODEL_SETTING)})  # fmt: skip
def new_job(request: Request, principal: Customer, body: JobIn) -> JobOut:
    job_request = JobRequest(**body.model_dump())
    settings, limited = app_settings(request), quota_owner(principal)
    with quota_transaction(app_store(request), limited) as session, answering_jobs_errors():
        check_new_job(session, settings, limited)  # first: a key at a quota is refused before its file is prepared
        return JobOut.of(create_job(session, settings, job_request, principal.key_id), principal, request)


@router.get("/jobs", response_model=JobList, responses=ROLE_RESPONSES, summary="Your jobs (operators: everyone's)")
def jobs(request: Request, principal: Customer, window: CursorWindow) -> JobList:
    with app_store(request).session() as session, answering_jobs_errors():
        page = list_jobs(session, visible_owner(principal), after=window.after, limit=window.limit, offset=window.offset)
        return JobList(data=[JobOut.of(job, principal, request) for job in page.data], has_more=page.has_more)


@router.get("/jobs/{job_id}", response_model=JobOut, responses=ROLE_RESPONSES, summary="One job")
def job(request: Request, principal: Customer, job_id: str) -> JobOut:
    with app_store(request).session() as session, answering_jobs_errors():
        return JobOut.of(get_job(session, job_id, visible_owner(principal)), principal, request)


def _started(session: Session, principal: Principal, job_id: str) -> tuple[Job, int]:
    """The caller's job ``job_id`` and its run's id (a 404 for another customer's job, and one not started)."""
    found = get_job(session, job_id, visible_owner(principal))
    if found.run_id is None:
        raise ApiError(404, "not_found", f"job {job_id} has no run yet: it has not been started", job=job_id)
    return found, found.run_id


@router.get("/jobs/{job_id}/run", response_model=RunOutcomeOut, responses=ROLE_RESPONSES, summary="How a job's run went")
def job_run(request: Request, principal: Customer, job_id: str) -> RunOutcomeOut:
    """The run of one of your jobs: status, tries, timings, score, failure and stderr tail (the run
    routes serve competitors, and hide job runs from them). 404 for another customer's job, and for a
    job not started yet (it has no run)."""
    with app_store(request).session() as session, answering_jobs_errors():
        found, run_id = _started(session, principal, job_id)
        # private: a job's run is read here only by its owner (or an operator), checked just above
        detail = read_run_detail(session, run_id, tail_lines=RESULT_TAIL_LINES, private=True)
    return RunOutcomeOut(**{**shown_to(principal, request, detail.to_json()), "base_model": found.base_model})  # as JobOut.of


@router.get("/jobs/{job_id}/run/logs", response_class=PlainTextResponse, responses=LOG_RESPONSES, summary="Your job's run log, as text")
def job_run_log(request: Request, principal: Customer, job_id: str, stream: LogStream = "stderr", full: FullLog = False) -> PlainTextResponse:
    """The last lines of your job's run's stderr (or stdout) log, or the whole file, as
    `GET /v1/runs/{id}/logs` answers a competitor: the stderr tail of `GET /v1/jobs/{id}/run` is 20
    lines. 404 for another customer's job, a job not started yet, and a run that kept no log."""
    with app_store(request).session() as session, answering_jobs_errors():
        _, run_id = _started(session, principal, job_id)
        # private: a job's run is read here only by its owner (or an operator), checked just above
        return run_log_text(principal, request, session, run_id, stream, full, private=True)


@router.post("/jobs/{job_id}/cancel", response_model=JobOut, responses={**ROLE_RESPONSES, 409: ERROR_RESPONSES[422]},
             summary="Cancel a queued or running job")  # fmt: skip
def cancel(request: Request, principal: Customer, job_id: str) -> JobOut:
    with app_store(request).transaction() as session, answering_jobs_errors():
        out = JobOut.of(cancel_job(session, job_id, visible_owner(principal)), principal, request)
    remove_ended_copies(app_store(request), app_settings(request), [job_id])  # a job queued again after a try ended now
    return out


EVENTS_RESPONSE = {200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                         "description": "Server-sent events: `id:` (resume with Last-Event-ID), `event:` (the kind), `data:` (JSON)."}}  # fmt: skip


@router.get("/jobs/{job_id}/events", response_class=StreamingResponse, responses={**ROLE_RESPONSES, **EVENTS_RESPONSE},
            summary="Stream a job's events (server-sent events) until it ends")  # fmt: skip
async def job_events(request: Request, principal: Customer, job_id: str,
                     last_event_id: Annotated[str | None, Header()] = None) -> StreamingResponse:  # fmt: skip
    store = app_store(request)
    owner = visible_owner(principal)
    await run_in_threadpool(_visible, store, job_id, owner)
    after = _resumed_after(last_event_id)
    poll = app_settings(request).api.sse_poll_seconds
    return StreamingResponse(_stream(request, principal, job_id, after, poll), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})  # fmt: skip


def _resumed_after(last_event_id: str | None) -> int:
    """The event id a Last-Event-ID header resumes after (0: from the first; none or an empty one, as the
    SSE standard has it); 422 for one that is no event id: not ASCII digits (``str.isdigit`` took '²',
    which int() refuses: a 500), or past what the store holds (a 23-digit id broke the stream)."""
    value = (last_event_id or "").strip()
    if not value:
        return 0
    if not (value.isascii() and value.isdigit()) or len(value) > len(str(STORE_INT_MAX)) or int(value) > STORE_INT_MAX:
        raise ApiError(422, "invalid_request", f"Last-Event-ID must be the id of an event this stream sent, a whole number "
                       f"from 0 to {STORE_INT_MAX}; got {value[:40]!r}", header="Last-Event-ID")  # fmt: skip
    return int(value)


def _visible(store: Store, job_id: str, owner: int | None) -> None:
    with store.session() as session, answering_jobs_errors():
        get_job(session, job_id, owner)


def _read_events(store: Store, job_id: str, after: int) -> tuple[list[dict[str, Any]], bool]:
    """The events after ``after``, and whether the job has ended (no final event can follow)."""
    with store.session() as session:
        ended = session.get_one(Job, job_id).status in JobStatus.FINISHED
        return [_event_json(event) for event in events_after(session, job_id, after)], ended


def _event_json(event: JobEvent) -> dict[str, Any]:
    return {"id": event.id, "kind": event.kind, "message": event.message, "at": event.at.isoformat(), "data": event.data}


async def _stream(request: Request, principal: Principal, job_id: str, after: int, poll: float) -> AsyncIterator[str]:
    """Every event after ``after``, as it is recorded (as ``principal`` reads it: ``api.shown``); ends
    after a final one (finished, failed, cancelled)."""
    while True:
        events, ended = await run_in_threadpool(_read_events, app_store(request), job_id, after)
        for event in map(partial(shown_to, principal, request), events):
            after = event["id"]
            yield f"id: {event['id']}\nevent: {event['kind']}\ndata: {json.dumps(event)}\n\n"
            if event["kind"] in EventKind.FINAL:
                return
        if (ended and not events) or await request.is_disconnected():  # resumed after the final event
            return
        await asyncio.sleep(poll)
