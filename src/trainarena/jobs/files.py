"""The uploaded files' rows: kept when checked, listed and read by their owner (an operator reads
all), deleted (the bytes go, with every copy of its rows the jobs made, ``jobs.copies``; the row stays
with ``deleted_at`` so the jobs made from it stay true)."""

from __future__ import annotations

import contextlib
import secrets
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trainarena.jobs.copies import job_copies, remove_copies
from trainarena.jobs.errors import InvalidInput, NotFound
from trainarena.jobs.uploads import CheckedFile
from trainarena.settings import Settings
from trainarena.store.models import Job, JobStatus, UploadedFile, utcnow
from trainarena.store.owned_lists import Page, UnknownCursor
from trainarena.store.owned_lists import owned_page as store_owned_page


def new_file_id() -> str:
    return "file-" + secrets.token_hex(8)


def store_upload(session: Session, settings: Settings, *, owner_key_id: int, staging: Path, filename: str,
                 checked: CheckedFile, sha256: str, size: int) -> UploadedFile:  # fmt: skip
    """Move the checked staging file into place and record it (the caller's transaction commits; the
    file is removed again when the row cannot be written)."""
    file_id = new_file_id()
    final = settings.uploads_dir / f"{file_id}{Path(filename).suffix.lower()}"
    staging.rename(final)
    try:
        row = UploadedFile(id=file_id, owner_key_id=owner_key_id, filename=Path(filename).name[:255], kind=checked.kind,
                           format=checked.format, size_bytes=size, sha256=sha256, rows=checked.rows,
                           columns=list(checked.columns), path=str(final))  # fmt: skip
        session.add(row)
        session.flush()
    except BaseException:
        final.unlink(missing_ok=True)
        raise
    return row


def owned_page(session: Session, model: type, owner: int | None, *, after: str | None, limit: int | None,
               offset: int = 0) -> Page:  # fmt: skip
    """``store.owned_lists.owned_page``, an unknown ``after`` refused as invalid input (a 422)."""
    try:
        return store_owned_page(session, model, owner, after=after, limit=limit, offset=offset)
    except UnknownCursor as error:
        raise InvalidInput(str(error), field="after") from None


def owned_row(session: Session, model: type, what: str, row_id: str, owner: int | None) -> Any:
    """The row ``row_id`` of ``model`` if ``owner`` may see it (None: anyone's); NotFound otherwise,
    the same for a missing row and another owner's."""
    row = session.get(model, row_id)
    if row is None or (owner is not None and row.owner_key_id != owner):
        raise NotFound(what, row_id)
    return row


def list_files(session: Session, owner: int | None, *, after: str | None = None, limit: int | None = 100,
               offset: int = 0) -> Page:  # fmt: skip
    """Files of ``owner`` (every owner's when None), deleted ones included (marked)."""
    return owned_page(session, UploadedFile, owner, after=after, limit=limit, offset=offset)


def get_file(session: Session, file_id: str, owner: int | None) -> UploadedFile:
    return owned_row(session, UploadedFile, "file", file_id, owner)


def delete_file(session: Session, file_id: str, owner: int | None, *, settings: Settings) -> UploadedFile:
    """Remove the file's bytes and the copies of its rows its jobs made (``jobs.copies``: a running
    job's are removed when it ends) and mark its row deleted. Idempotent: deleting it again removes
    what jobs left since."""
    row = get_file(session, file_id, owner)
    if row.deleted_at is None:
        with contextlib.suppress(FileNotFoundError):
            Path(row.path).unlink()
        row.deleted_at = utcnow()
    for job in session.scalars(select(Job).where(Job.file_id == row.id, Job.status != JobStatus.RUNNING)):
        remove_copies(job_copies(session, settings, job))
    return row
