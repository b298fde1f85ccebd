"""Customers' training jobs: uploaded files checked on arrival, jobs queued and run by the reigning
champion's script (or the house script) in the same sandbox as tournaments, their events, the worker
that runs them, and the gate that shares devices with tournaments (docs/api.md, "Files", "Jobs")."""

from trainarena.jobs.copies import remove_ended_copies
from trainarena.jobs.errors import Conflict, InvalidInput, JobsError, NotFound, TooLarge
from trainarena.jobs.gate import JOB, TOURNAMENT, DeviceGate, GatedBackend
from trainarena.jobs.records import (
    HOUSE_SCRIPT,
    EventKind,
    JobRequest,
    cancel_job,
    create_job,
    events_after,
    get_job,
    job_base_fields,
    job_compared_with_base,
    job_same_as_base,
    job_script,
    list_jobs,
    not_before,
    waiting_reason,
)
from trainarena.jobs.worker import JobWorker

__all__ = [
    "HOUSE_SCRIPT", "JOB", "TOURNAMENT", "Conflict", "DeviceGate", "EventKind", "GatedBackend", "InvalidInput", "JobRequest", "JobWorker",
    "JobsError", "NotFound", "TooLarge", "cancel_job", "create_job", "events_after", "get_job", "job_base_fields",
    "job_compared_with_base", "job_same_as_base", "job_script", "list_jobs",
    "not_before", "remove_ended_copies", "waiting_reason",
]
