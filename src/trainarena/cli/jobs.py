"""`trainarena jobs list | show | cancel`: customers' training jobs, as an operator sees them (every
customer's; docs/api.md, "Jobs")."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console

from trainarena.cli.output import (
    BLOCK_INDENT,
    Col,
    OneLineTable,
    count_option,
    fail,
    print_block,
    print_fields,
    print_wrapped,
    scored_columns,
    seconds_text,
)
from trainarena.jobs import (
    JobsError,
    cancel_job,
    events_after,
    get_job,
    job_base_fields,
    job_same_as_base,
    list_jobs,
    not_before,
    remove_ended_copies,
    waiting_reason,
)
from trainarena.settings import Settings
from trainarena.store import open_store
from trainarena.store.models import Job
from trainarena.tasks import score_direction
from trainarena.wording import ScoreColumn

app = typer.Typer(help="List, show and cancel customers' training jobs.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
JobId = Annotated[str, typer.Argument(help="The job's id (job-...).")]
# The tier, the budget and the failure reason are in `jobs show`. The base model is a handle (it is one of
# settings jobs.base_models, typed back into POST /v1/jobs): never cut; where 80 columns cannot hold it
# whole beside the id, the creation time gives way (it is in `jobs show` too): shown whole or not at all,
# since a cut time ("12-02 …") reads as a time.
JOB_COLUMNS = (Col("id", handle=True), Col("status"), Col("type"), Col("base model", handle=True), Col("score", justify="right"),
               Col("created", optional=True))  # fmt: skip


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def _record(job: Job, stale_seconds: float) -> dict[str, Any]:
    return {
        "id": job.id, "status": job.status, "task_type": job.task_type, "base_model": job.base_model,
        "file_id": job.file_id, "owner_key_id": job.owner_key_id, "owner_key_name": job.owner_key.name, "budget_tier": job.budget_tier,
        "budget_seconds": job.budget_seconds,
        "validation_share": job.validation_share, "seed": job.seed, "competitor_id": job.competitor_id,
        "run_id": job.run_id, "model_id": job.model_id, "score": job.score, **job_base_fields(job), "same_as_base": job_same_as_base(job), "failure_reason": job.failure_reason,
        "waiting_reason": waiting_reason(job, stale_seconds), "not_before": _iso(not_before(job)), "cancel_requested": job.cancel_requested, "created_at": _iso(job.created_at), "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
    }  # fmt: skip


def _text_fields(record: dict[str, Any]) -> list[tuple[str, str]]:
    """``jobs show``'s lines: each field of ``record``, the owner's API key by its name (as `keys list`
    and `keys revoke` name it) with its id beside it."""
    fields = []
    for key, value in record.items():
        if key == "owner_key_name":
            fields.append(("owner key", f"{value} (id {record['owner_key_id']})"))
        elif key == "budget_seconds":
            fields.append(("budget", seconds_text(value)))
        elif isinstance(value, bool):
            fields.append((key.replace("_", " "), "yes" if value else "no"))
        elif key != "owner_key_id":
            fields.append((key.replace("_", " "), "" if value is None else str(value)))
    return fields


@app.command("list")
def list_command(
    status: Annotated[str | None, typer.Option("--status", help="Only jobs in this status (queued, running, ...).")] = None,
    limit: Annotated[int, count_option("--limit", help="Newest jobs shown.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """The newest jobs of every customer: status, task type, base model, score, when created (`jobs show` has the tier); under the table, why each job queued again waits and until when, and each running job whose worker stopped beating."""
    settings = Settings()
    with open_store(settings) as store, store.session() as session:
        rows = [_record(job, settings.jobs.stale_seconds) for job in list_jobs(session, None, limit=limit).data if status in (None, job.status)]
    if as_json:
        typer.echo(json.dumps({"ok": True, "jobs": rows}))
        return
    scores = ScoreColumn(score_direction(row["task_type"]) for row in rows)
    table = OneLineTable(scored_columns(JOB_COLUMNS, "score", scores), title="Training jobs")
    for row in rows:
        score = "" if row["score"] is None else f"{row['score']:.4g}"
        table.add_row([row["id"], row["status"], row["task_type"], row["base_model"], scores.cell(score, score_direction(row["task_type"])),
                       (row["created_at"] or "")[5:16].replace("T", " ")])  # fmt: skip
    console = Console(highlight=False)
    console.print(table if rows else "no jobs yet (customers create them with POST /v1/jobs)")
    # A queued job waiting after a withdrawn try: the reason is a sentence (a column would cut it at 80).
    for row in rows:
        if row["waiting_reason"] is not None:
            print_wrapped(console, f"{row['id']} waits: {row['waiting_reason']}")


@app.command("show")
def show_command(job_id: JobId, as_json: JsonFlag = False) -> None:
    """One job: every field, then its events."""
    try:
        settings = Settings()
        with open_store(settings) as store, store.session() as session:
            record = _record(get_job(session, job_id, None), settings.jobs.stale_seconds)
            events = [{"id": e.id, "at": e.at.isoformat(), "kind": e.kind, "message": e.message}
                      for e in events_after(session, job_id)]  # fmt: skip
    except JobsError as error:
        raise fail(error.message, as_json, id=job_id) from None
    if as_json:
        typer.echo(json.dumps({"ok": True, **record, "events": events}))
        return
    console = Console(highlight=False, soft_wrap=True)
    print_fields(console, _text_fields(record))
    print_block(console, "events", "")
    # As fields: a message wraps under the messages' column, not on from column 0 as a terminal carries a long line.
    print_fields(console, [(f"{BLOCK_INDENT}{event['at'][:19]}  {event['kind']}", event["message"]) for event in events])


@app.command("cancel")
def cancel_command(job_id: JobId, as_json: JsonFlag = False) -> None:
    """Cancel a job: a queued one at once, a running one is stopped by its worker."""
    try:
        settings = Settings()
        with open_store(settings) as store:
            with store.transaction() as session:
                record = _record(cancel_job(session, job_id, None), settings.jobs.stale_seconds)
            remove_ended_copies(store, settings, [job_id])  # a job queued again after a try ended now
    except JobsError as error:
        raise fail(error.message, as_json, id=job_id) from None
    message = "cancelled" if record["status"] == "cancelled" else "cancellation asked; its worker stops the run"
    typer.echo(json.dumps({"ok": True, **record}) if as_json else f"{job_id}: {message}")
