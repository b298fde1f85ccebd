"""The copies of an uploaded file's rows that a job makes, and their removal.

A job prepares its file as a task (``jobs.split``, through the pipeline's preparer): the train split
under ``cache/tasks/<digest>/`` and the held-out split under ``hidden/<digest>/``, where ``digest`` is
that of the job's task definition (a killed preparation leaves ``.staging-<digest>-*`` folders beside
them; ``task_preparation.task_folders`` and ``task_preparation.staged_leftovers`` name them, for the preparer too). A job's task is named after the job, so no tournament and no other job shares these folders.
Each attempt copies the train split into ``runs/jobs/<job>/attempt-N/inputs/``, and an audit of the
job's run (``records.audit``) prepares the same task again and stages it under
``runs/audits/run-<run>-<n>/inputs/``.

Nothing reads them once the job has ended: its run's statement hashed the splits when the run was
stored, and its model is in the registry. So they are removed (``remove_ended_copies``) right after
each ending is committed, by whoever ended the job: its worker when the try returns (``JobRunner``);
another worker's ``requeue_stale`` that fails or cancels the job of a worker that stopped beating; the
claim that ends cancelled a job queued again with its cancellation asked (``queue.claim_next``); and
the API's and the CLI's cancel of a job queued again for another try (``records.cancel_job`` itself has
no settings). A job queued again keeps them for its next try. What an ending missed (a process that
died between the commit and the removal, a store that failed then) is removed when a job worker starts
(``sweep_ended_copies``: a removal that finished marks the job's folder), and again when the file is
deleted (``delete_file``), with the audits made since. A running job keeps its copies until
it ends; a queued one whose file was deleted fails when it starts.

Kept: each attempt's ``logs/`` and ``output/`` (what the script printed and wrote), the run's records
and the registered model.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy.orm import Session

from trainarena.runs import definition_digest, definition_from_json
from trainarena.settings import Settings
from trainarena.store import Store
from trainarena.store.models import Job, JobStatus, Run
from trainarena.task_preparation import staged_leftovers, task_folders

log = logging.getLogger(__name__)

# In a job's folder (``runs/jobs/<job>/``) once its copies were removed after it ended.
REMOVED_MARK = ".copies-removed"


def prepared_dirs(settings: Settings, digest: str) -> list[Path]:
    """The folders a preparation of the task with definition digest ``digest`` writes (the
    preparer's ``task_folders``), and the staging folders a killed preparation left beside them."""
    folders = task_folders(settings, digest)
    return [*folders, *(leftover for folder in folders for leftover in staged_leftovers(folder))]


def job_copies(session: Session, settings: Settings, job: Job) -> list[Path]:
    """Every folder of ``job``'s that may hold rows of its file (see the module's docstring)."""
    found: list[Path] = []
    run = None if job.run_id is None else session.get(Run, job.run_id)
    if run is not None:
        found += prepared_dirs(settings, definition_digest(definition_from_json(run.task.definition)))
        audits = settings.work_dir / "audits"
        if audits.is_dir():
            found += sorted(audits.glob(f"run-{run.id}-*/inputs"))
    attempts = settings.work_dir / "jobs" / job.id
    if attempts.is_dir():
        found += sorted(attempts.glob("attempt-*/inputs"))
    return found


def remove_copies(paths: list[Path]) -> list[Path]:
    """Remove each of ``paths`` (folders) that exists; the ones removed."""
    removed = []
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def remove_ended_copies(store: Store, settings: Settings, job_ids: Iterable[str]) -> None:
    """Remove the copies of each of ``job_ids`` that has ended (succeeded, failed, cancelled; a queued
    or running job keeps them: a worker may be using them, or another one took it over) and mark its
    folder (``REMOVED_MARK``). Called after the end was committed (the run's statement hashed the
    splits in that transaction). A store that fails here leaves them to ``sweep_ended_copies``."""
    ids = list(job_ids)
    if not ids:
        return
    try:
        with store.session() as session:
            for job_id in ids:
                job = session.get(Job, job_id)
                if job is not None and job.status in JobStatus.FINISHED:
                    remove_copies(job_copies(session, settings, job))
                    folder = settings.work_dir / "jobs" / job_id
                    if folder.is_dir():
                        (folder / REMOVED_MARK).touch()
    except Exception:  # noqa: BLE001 - the jobs' outcomes are stored; this is only tidying
        log.exception("jobs %s: their copies of the file's rows were not removed", ", ".join(ids))


def sweep_ended_copies(store: Store, settings: Settings) -> None:
    """At a job worker's start: remove the copies of the ended jobs whose removal never finished (a
    process that died between the end's commit and the removal, a store that failed then), the jobs
    whose folder has no ``REMOVED_MARK``. Queued and running jobs among them are left alone."""
    jobs = settings.work_dir / "jobs"
    unmarked = sorted(folder.name for folder in jobs.iterdir() if not (folder / REMOVED_MARK).exists()) if jobs.is_dir() else []
    remove_ended_copies(store, settings, unmarked)
