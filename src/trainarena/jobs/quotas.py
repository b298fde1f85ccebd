"""Per-customer quotas: the bytes a customer key's stored files may take (``api.upload_quota_bytes``),
the bytes its stored models may take (``api.model_quota_bytes``) and how many of its jobs may be queued
or running at once (``jobs.active_quota``), so that one key cannot fill the operator's disk or the job
queue and starve every other customer. A key over one is refused with :class:`QuotaExceeded` naming the
setting, its usage, the limit and what frees room. Operator keys are not limited (the callers pass None
for them); 0 in a setting: no limit.

A model's size is known only once its job has trained it, and a trained model is always kept: the
model quota refuses new jobs while the key's models reach it, and the jobs already queued may take the
key past it. Its usage is the sum of the sizes the registry stored with each model (no folder is read).

Two requests of one key at once must not both pass a quota they together exceed: the check and the
write that takes the room run in one transaction under the key's store-wide lock
(``store.locks.named_lock``: an advisory lock on PostgreSQL, a file lock beside a SQLite database),
held until that transaction commits. An upload is refused while it streams, not once it is whole: its
room is the quota less the key's stored files and the uploads of the key this process is receiving
(:class:`UploadsUnderWay`); the check under the lock when it is stored counts what other processes
stored meanwhile. An upload that declares its size up front (its Content-Length, its file part's) past
that room is refused before a byte of it is read; the count while it streams stays, for a size that
lies or is not declared.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from trainarena.jobs.errors import QuotaExceeded
from trainarena.settings import Settings
from trainarena.store import Store
from trainarena.store.locks import named_lock
from trainarena.store.models import Job, JobStatus, RegisteredModel, UploadedFile
from trainarena.submissions.mirror_quota import MIRROR_SETTING, mirror_usage
from trainarena.wording import counted

UPLOAD_SETTING = "api.upload_quota_bytes"
MODEL_SETTING = "api.model_quota_bytes"
JOBS_SETTING = "jobs.active_quota"
ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


@dataclass(frozen=True)
class QuotaUsage:
    """How much of one quota a key uses: ``limit`` None when the setting is 0 (no limit)."""

    setting: str
    used: int
    limit: int | None


def stored_upload_bytes(session: Session, key_id: int) -> int:
    """The bytes of ``key_id``'s files that are not deleted."""
    total = session.scalar(select(func.sum(UploadedFile.size_bytes))
                           .where(UploadedFile.owner_key_id == key_id, UploadedFile.deleted_at.is_(None)))  # fmt: skip
    return int(total or 0)


def stored_model_bytes(session: Session, key_id: int) -> int:
    """The bytes of ``key_id``'s models that are not deleted, as registered."""
    total = session.scalar(select(func.sum(RegisteredModel.size_bytes))
                           .where(RegisteredModel.owner_key_id == key_id, RegisteredModel.deleted_at.is_(None)))  # fmt: skip
    return int(total or 0)


def active_jobs(session: Session, key_id: int) -> int:
    """``key_id``'s jobs that are queued or running."""
    return session.scalar(select(func.count()).select_from(Job).where(Job.owner_key_id == key_id, Job.status.in_(ACTIVE))) or 0


def key_usage(session: Session, settings: Settings, key_id: int) -> list[QuotaUsage]:
    """What ``key_id`` (a customer's) uses of each of its quotas (``GET /v1/me``)."""
    return [QuotaUsage(UPLOAD_SETTING, stored_upload_bytes(session, key_id), settings.api.upload_quota_bytes or None),
            QuotaUsage(MODEL_SETTING, stored_model_bytes(session, key_id), settings.api.model_quota_bytes or None),
            QuotaUsage(JOBS_SETTING, active_jobs(session, key_id), settings.jobs.active_quota or None)]  # fmt: skip


def competitor_usage(settings: Settings, key_id: int) -> list[QuotaUsage]:
    """What ``key_id`` (a competitor's) uses of its quota: the disk of its registrations' repository
    mirrors (``submissions.mirror_quota``)."""
    return [QuotaUsage(MIRROR_SETTING, mirror_usage(settings, key_id), settings.registration.mirror_quota_bytes or None)]


@contextmanager
def quota_transaction(store: Store, key_id: int | None) -> Iterator[Session]:
    """A transaction of ``store`` held under ``key_id``'s quota lock until it commits: check a quota and
    write what takes its room in it. None (an operator's key, not limited): a plain transaction."""
    lock = nullcontext() if key_id is None else named_lock(store.engine, f"quota-key-{key_id}")
    with lock, store.transaction() as session:
        yield session


def check_new_job(session: Session, settings: Settings, key_id: int | None) -> None:
    """QuotaExceeded when ``key_id`` (None: an operator's, not limited) may not create a job now: it has
    ``jobs.active_quota`` jobs queued or running, or its stored models reach ``api.model_quota_bytes``
    (then a new job is refused until models are deleted: the module's docstring)."""
    if key_id is None:
        return
    jobs_limit, bytes_limit = settings.jobs.active_quota, settings.api.model_quota_bytes
    active = active_jobs(session, key_id) if jobs_limit else 0
    if jobs_limit and active >= jobs_limit:
        raise QuotaExceeded(f"this key has {counted(active, 'job')} queued or running, the most it may have at once "
                            f"({JOBS_SETTING} = {jobs_limit}); wait for one to end (GET /v1/jobs lists them) or cancel one "
                            "with POST /v1/jobs/{id}/cancel, then create this job again",
                            setting=JOBS_SETTING, used=active, limit=jobs_limit)  # fmt: skip
    stored = stored_model_bytes(session, key_id) if bytes_limit else 0
    if bytes_limit and stored >= bytes_limit:
        raise _models_reach_quota(stored, bytes_limit)


def _models_reach_quota(stored: int, limit: int) -> QuotaExceeded:
    return QuotaExceeded(f"this key's models take {stored:,} bytes (models not deleted), at or past its quota of {limit:,} bytes "
                         f"({MODEL_SETTING}); delete models you no longer need with DELETE /v1/models/{{id}} (GET /v1/me shows "
                         "the usage), then create this job again", setting=MODEL_SETTING, used_bytes=stored, limit_bytes=limit)


def check_upload_bytes(session: Session, settings: Settings, key_id: int | None, size: int) -> None:
    """QuotaExceeded when storing ``size`` more bytes would take ``key_id``'s files past
    ``api.upload_quota_bytes`` (None: an operator's key, not limited)."""
    limit = settings.api.upload_quota_bytes
    if key_id is not None and limit:
        stored = stored_upload_bytes(session, key_id)
        if stored + size > limit:
            raise _over_upload_quota(stored, 0, size, limit)


def _over_upload_quota(stored: int, others: int, size: int, limit: int, how: str = "has reached") -> QuotaExceeded:
    arriving = f", {others:,} more are arriving in its other uploads now" if others else ""
    return QuotaExceeded(f"this upload would take this key's files past {limit:,} bytes ({UPLOAD_SETTING}): {stored:,} "
                         f"bytes are stored (files not deleted){arriving}, and this upload {how} {size:,}; delete "
                         "files you no longer need with DELETE /v1/files/{id} (GET /v1/me shows the usage), then upload "
                         "it again", setting=UPLOAD_SETTING, used_bytes=stored + others, upload_bytes=size,
                         limit_bytes=limit)  # fmt: skip


class UploadsUnderWay:
    """The bytes of each key's uploads this process is receiving now, counted as they arrive, so that
    two uploads of one key at once are refused while they stream once together they pass the quota."""

    def __init__(self, settings: Settings) -> None:
        self._limit = settings.api.upload_quota_bytes
        self._lock = threading.Lock()
        self._bytes: Counter[int] = Counter()

    def refuse_declared(self, key_id: int | None, stored: int, size: int, declared_by: str) -> None:
        """QuotaExceeded, before a byte of it is read, when an upload of ``key_id`` (None: an operator's)
        whose file takes at least ``size`` bytes (as ``declared_by`` says, e.g. its Content-Length) would
        take ``stored``, the key's uploads under way and it past the quota."""
        if key_id is None or not self._limit:
            return
        with self._lock:
            under_way = self._bytes[key_id]
        if stored + under_way + size > self._limit:
            raise _over_upload_quota(stored, under_way, size, self._limit, f"declares (by {declared_by}) at least")

    @contextmanager
    def receiving(self, key_id: int | None, stored: int) -> Iterator[Callable[[int], None]]:
        """A function to call with the size of each chunk of an upload of ``key_id`` (None: an operator's,
        not limited) that raises QuotaExceeded once ``stored`` (its files' bytes when the upload began),
        its uploads under way and this chunk pass the quota. Its bytes count as under way until the block
        ends: after its file's row is committed, when they count as stored."""
        if key_id is None or not self._limit:
            yield lambda _size: None
            return
        taken = 0

        def take(size: int) -> None:
            nonlocal taken
            with self._lock:
                under_way = self._bytes[key_id]
                if stored + under_way + size > self._limit:
                    raise _over_upload_quota(stored, under_way - taken, taken + size, self._limit)
                self._bytes[key_id] += size
                taken += size

        try:
            yield take
        finally:
            with self._lock:
                self._bytes[key_id] -= taken
                if self._bytes[key_id] <= 0:
                    del self._bytes[key_id]
