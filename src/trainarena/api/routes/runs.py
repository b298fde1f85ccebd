"""``/v1/runs``: runs with their scores and statuses (`trainarena runs list`), one run in full (`runs
show`), and its logs as text. Competitor and operator keys; a customer reads its job's run through
``/v1/jobs/{id}/run`` (:class:`RunOutcomeOut`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from trainarena.api.auth import Competitor, Principal
from trainarena.api.context import app_settings, app_store
from trainarena.api.errors import ROLE_RESPONSES, ApiError, not_found
from trainarena.api.paging import STORE_INT_MAX, CursorWindow, Page
from trainarena.api.shown import shown_to
from trainarena.reporting.log_access import ALL_LOGS, LogsRule, LogsWithheldError, logs_rule
from trainarena.reporting.run_detail import (
    RESULT_TAIL_LINES,
    UnknownLogError,
    UnknownRunError,
    read_run_detail,
    read_run_log,
)
from trainarena.reporting.run_list import AD_HOC, list_runs, run_filter_problem
from trainarena.reporting.server_paths import SERVER_SOURCE
from trainarena.store.owned_lists import UnknownCursor
from trainarena.store.shown_status import ShownStatus

router = APIRouter(prefix="/v1", tags=["runs"], responses=ROLE_RESPONSES)

RunId = Annotated[int, Path(ge=1, le=STORE_INT_MAX, description="The run's id, as brackets, leaderboards and run lists show it.")]


class DriverOut(BaseModel):
    """Who drives a running tournament, and so its running runs. Not alive: its runs marked running are
    not training, though their status stays running until `trainarena tournament run ID` (or `POST
    /v1/tournaments/{id}/start`) resumes it."""

    alive: bool = Field(description="Whether a live driver holds the tournament's lease; false: the run is not training.")
    host: str | None = Field(description="The driver's host (the last one's when none drives it; null when its lease was released). "
                             "Operators' keys only: null for any other key.")
    pid: int | None = Field(description="The driver's process id on that host (as host; operators' keys only).")
    since: datetime | None = Field(description="When none drives it: since when (the last driver's last heartbeat, or the tournament's last run start or end); null while one does.")


DRIVER_DESCRIPTION = "A running tournament run: who drives its tournament (not alive: not training); null for every other run."
STATUS_DESCRIPTION = ("pending, running, succeeded, failed, timed_out or invalid; cancelled for a tournament run its "
                      "tournament's cancellation left unfinished (never played: reason says the tournament's outcome).")


class RunSummaryOut(BaseModel):
    run_id: int = Field(description="What GET /v1/runs/{run_id} takes.")
    origin: str = Field(description="tournament, adhoc, audit (a re-run of run audit_of), house or base_model (a reference).")
    audit_of: int | None = Field(description="An audit's run: the run it re-measures; null for every other run.")
    tournament: str | None = Field(description="The tournament's name; null outside tournaments.")
    round: int | None = Field(description="The round, 1-based.")
    stage: str | None = Field(description="group, knockout or boss.")
    task: str = Field(description="The task's name.")
    task_digest: str | None = Field(description="The task definition's digest: equal digests, comparable scores.")
    competitor: str = Field(description="The competitor's name (or the reference's, or a working tree's).")
    status: str = Field(description=STATUS_DESCRIPTION)
    attempts: int = Field(description="How many times it was started (interrupted runs are run again).")
    score: float | None = Field(description="The score of the attempt that counts; null while none scored.")
    direction: str | None = Field(description="lower or higher: which scores of its task type are better.")
    reason: str = Field(description="Why it failed, in one line; empty when it did not.")
    driver: DriverOut | None = Field(description=DRIVER_DESCRIPTION)


class ReferenceOut(BaseModel):
    kind: str = Field(description="base_model or house.")
    label: str = Field(description="What the reference is.")
    run_id: int | None = Field(description="The reference's run; with `missing`, its failed run (null when it has none).")
    score: float | None = Field(description="The reference's score (null when missing).")
    improvement: float | None = Field(description="This run's relative improvement over it (0.1: 10 % better).")
    missing: str | None = Field(None, description="Why there is no reference score to compare with: the house script 'not run on this seed', or 'failed on this seed (run N: reason)' (null otherwise).")


class AttemptOutcomeOut(BaseModel):
    """One try of a run, as the customer whose job it ran sees it (no host)."""

    number: int
    status: str
    counts: bool = Field(description="Whether this attempt's outcome is the run's.")
    started_at: datetime | None
    wall_seconds: float | None
    score: float | None
    reason: str = Field(description="Why it failed, in one line.")


class AttemptOut(AttemptOutcomeOut):
    driver: str = Field(description="host:pid of the driver that executed it.")


class RunOutcomeOut(BaseModel):
    """How a run went, as the customer whose job it ran reads it (`GET /v1/jobs/{id}/run`): status,
    tries, timings, score, failure and stderr tail, without the platform's paths, hosts and the
    tournament fields that :class:`RunDetailOut` adds for operators and competitors. For any key but an
    operator's, a path on the server in a text (reason, summary, failure_reason, stderr_tail) reads as
    the script saw it (/output/..., /inputs/...), else relative to the data dir (<data dir>/...) or the
    platform's install (<platform>/...)."""

    run_id: int
    origin: str = Field(description="tournament, adhoc, audit (a re-run of run audit_of), house or base_model (a reference); job for a customer's job.")
    task_type: str
    base_model: str
    budget_seconds: float | None
    seed: int | None
    competitor: str = Field(description="Who ran: the competitor's name, a working tree's folder name, or the reference's name; for a job's run, "
                            "the script that trained it as the job names it (its champion's name, or house script).")
    repo_url: str | None = Field(description="The competitor's repository; for a working tree's run, the tree's folder on the server, "
                                 f"which an operator's key alone reads (any other: '{SERVER_SOURCE}').")
    commit: str | None
    status: str = Field(description=STATUS_DESCRIPTION)
    attempts: int
    score: float | None
    direction: str | None = Field(description="lower or higher: which scores are better.")
    not_scored: str | None = Field(description="Why a run whose evaluation has a number shows no score (a customer's job that kept no "
                                   "validation rows, as `runs show` says it); null otherwise.")
    reason: str = Field(description="Why it failed, in one line.")
    summary: str = Field(description="The platform's whole summary of a failure.")
    failure_reason: str | None = Field(description="The whole recorded failure text (summary and stderr tail).")
    stderr_tail: str | None = Field(description=f"The last {RESULT_TAIL_LINES} lines of the script's stderr.")
    artifact_digest: str | None = Field(description="The artifact's digest (sha256 hex), as its signed record names it.")
    started_at: datetime | None
    finished_at: datetime | None
    wall_seconds: float | None
    steps: dict[str, float] | None = Field(description="The platform's seconds per step of the run, in the order it did them (prepare, sandbox, script, artifact_check, eval_startup, eval_compute, store: those recorded), from its folder's timings.json; null when it has none.")
    attempt_history: list[AttemptOutcomeOut] = Field(description="Every attempt, oldest first.")


class RunDetailOut(RunOutcomeOut):
    """A run in full as a competitor reads it: the customer's view and where the run was played, its
    references and whether a driver plays it, without the platform's paths and hosts
    (:class:`OperatorRunDetailOut` adds them)."""

    audit_of: int | None = Field(description="An audit's run: the run it re-measures; null for every other run.")
    tournament_id: int | None
    tournament: str | None
    round: int | None
    stage: str | None
    match_id: str | None
    task: str
    task_digest: str | None
    dirty: bool | None = Field(description="A working tree with uncommitted changes (ad-hoc runs).")
    references: list[ReferenceOut] = Field(description="The task's references (the base model's, the house script's run on this run's seed) and how this run compares.")
    driver: DriverOut | None = Field(description=DRIVER_DESCRIPTION)
    logs_withheld: str | None = Field(description="Why the script's output is left out for this key (settings "
                                      "api.tournament_run_logs): stderr_tail is null, and reason, summary, failure_reason "
                                      "and attempts' reasons are the platform's summary without the stderr tail; null: shown.")  # fmt: skip


class OperatorRunDetailOut(RunDetailOut):
    """A run in full, as `trainarena runs show --json` prints it: what an operator's key reads, the
    platform's paths and the drivers' hosts included (they are the operator's business, not a competitor's)."""

    attempt_history: list[AttemptOut] = Field(description="Every attempt, oldest first, with the driver that executed it.")

    snapshot_path: str | None = Field(description="The copy of a working tree the sandbox ran (ad-hoc runs), on the platform's host.")
    stderr_tail_from: str | None = Field(description="Where the tail was read from: the stderr log's path, or 'recorded with the failure reason'.")
    log_path: str | None = Field(description="The run's log folder (stdout.log, stderr.log, sandbox.txt) on the platform's host.")
    artifact_path: str | None = Field(description="The folder of the model the run saved, on the platform's host.")


class RunList(Page[RunSummaryOut]):
    has_more: bool = Field(description="Runs follow this page: pass its last run_id as `after` (or raise `offset`).")


@router.get("/runs", response_model=RunList, summary="List runs with their statuses and scores")
def list_all(
    caller: Competitor,
    request: Request,
    window: CursorWindow,
    tournament: Annotated[str | None, Query(description=f"Only this tournament's runs (its name or id), or '{AD_HOC}' for those outside tournaments ('reference', 'audit': those alone).")] = None,
    competitor: Annotated[str | None, Query(description="Only this competitor's runs (its name), a working tree's ('NAME (tree)', or for an operator's key its path on the server) or a reference's ('house script', 'base model').")] = None,
    status: Annotated[ShownStatus | None, Query(description="Only runs with this status as listed: cancelled selects the runs a cancelled tournament left unfinished (never pending or running).")] = None,
    task: Annotated[str | None, Query(description="Only this task's runs (its name, or a prefix of 6 or more characters of its digest).")] = None,
) -> RunList:
    """Tournament runs in play order (tournament, round, match, task, run id), then runs outside
    tournaments (ad hoc, references) by id, oldest first. Page on with `after` (the last `run_id` a
    page answered: a deep page costs about what the first does) or `offset` (the database steps over
    the runs it skips). A filter naming no tournament, competitor or task is a 404; an `after` that is
    no listed run a 422."""
    cursor = None if window.after is None else _run_cursor(window.after)
    with app_store(request).session() as session:
        problem = run_filter_problem(session, tournament=tournament, competitor=competitor, task=task, operator=caller.is_operator)
        if problem is not None:
            raise ApiError(404, "not_found", problem.message, **{problem.field: problem.value})
        try:  # one more than the page holds says whether more follow
            rows = list_runs(session, tournament=tournament, competitor=competitor, status=None if status is None else status.value,
                             task=task, after=cursor, offset=window.offset, limit=window.limit + 1)  # fmt: skip
        except UnknownCursor as error:
            raise ApiError(422, "invalid_request", str(error), field="after") from None
    rows, more = rows[:window.limit], len(rows) > window.limit
    return RunList(data=[RunSummaryOut(**shown_to(caller, request, run.to_json())) for run in rows], has_more=more)


def _run_cursor(after: str) -> int:
    """``after`` as a run id; one that no run can have (not a number, or past what the store holds) is
    an unknown cursor, as a missing run is."""
    if not (after.isascii() and after.isdigit()) or not 1 <= int(after) <= STORE_INT_MAX:
        raise ApiError(422, "invalid_request", str(UnknownCursor(after)), field="after")
    return int(after)


def _callers_logs_rule(caller: Principal, request: Request) -> LogsRule:
    """The rule ``caller`` reads tournament runs' logs under: the setting's, its own competitors' runs always."""
    return logs_rule(app_settings(request).api.tournament_run_logs, operator=caller.is_operator, key_id=caller.key_id)


# The operator's model first: a competitor's answer lacks its path fields, so only RunDetailOut takes it.
@router.get("/runs/{run_id}", response_model=OperatorRunDetailOut | RunDetailOut, summary="One run in full")
def show(run_id: RunId, caller: Competitor, request: Request) -> RunDetailOut:
    """Status, failure reason, stderr tail, score and references, step timings and every attempt; for
    an operator's key, also the log, artifact and snapshot paths on the platform's host, the stderr
    log the tail was read from, a working tree's folder and the drivers' hosts (`OperatorRunDetailOut`).
    A tournament run's stderr is left out as settings api.tournament_run_logs says (`logs_withheld`)."""
    rule = _callers_logs_rule(caller, request)
    with app_store(request).session() as session:
        try:
            detail = read_run_detail(session, run_id, tail_lines=RESULT_TAIL_LINES, logs=rule)
        except UnknownRunError:
            raise not_found("run", run_id) from None
    shape = OperatorRunDetailOut if caller.is_operator else RunDetailOut
    return shape(**shown_to(caller, request, detail.to_json()))


# The log route answers text, its errors JSON: each error response names its media type itself.
LOG_RESPONSES = {
    200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "The log"},
    **{status: {"description": response["description"],
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
       for status, response in ROLE_RESPONSES.items()},
}  # fmt: skip


# The query of both log routes (a tournament run's, a job run's).
LogStream = Annotated[Literal["stderr", "stdout"], Query(description="Which log: the script's stderr or stdout.")]
FullLog = Annotated[bool, Query(description="The whole file instead of its last lines (settings api.log_tail_lines).")]


def run_log_text(caller: Principal, request: Request, session: Session, run_id: int, stream: str, full: bool, *,
                 private: bool = False, logs: LogsRule = ALL_LOGS) -> PlainTextResponse:
    """The run's log as the log routes answer it (``private``: a job's run, its owner checked; ``logs``:
    the rule the caller reads a tournament run's logs under, ``log_access.logs_rule``)."""
    tail = None if full else app_settings(request).api.log_tail_lines
    try:
        text = read_run_log(session, run_id, stream, tail_lines=tail, private=private, logs=logs)
    except UnknownRunError:
        raise not_found("run", run_id) from None
    except LogsWithheldError as error:
        raise ApiError(403, "forbidden", str(error), run=str(run_id), setting="api.tournament_run_logs") from None
    except UnknownLogError as error:
        raise ApiError(404, "not_found", str(error), run=str(run_id), stream=stream) from None
    return PlainTextResponse(shown_to(caller, request, text))


@router.get("/runs/{run_id}/logs", response_class=PlainTextResponse, summary="A run's log, as text", responses=LOG_RESPONSES)
def logs(run_id: RunId, caller: Competitor, request: Request, stream: LogStream = "stderr", full: FullLog = False) -> PlainTextResponse:
    """The last lines of the run's stderr (or stdout) log, or the whole file; 404 when the run has none;
    403 when settings api.tournament_run_logs withholds a tournament run's logs from this key."""
    rule = _callers_logs_rule(caller, request)
    with app_store(request).session() as session:
        return run_log_text(caller, request, session, run_id, stream, full, logs=rule)
