"""The tables of the platform as a service: API keys, customers' uploaded files, training jobs and
their events, and the model registry (migration 0006). Their runs are ``run`` rows of origin ``job``."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trainarena.store.base import Base, utcnow

if TYPE_CHECKING:
    from trainarena.store.models import Competitor

__all__ = ["ApiKey", "ApiRole", "Job", "JobEvent", "JobStatus", "RegisteredModel", "UploadedFile"]


class ApiRole:
    """What an API key may do (docs/api.md, "Keys and roles"): an operator everything; a competitor register
    scripts and read tournaments, runs and champions; a customer only its own files, jobs and models."""

    OPERATOR = "operator"
    COMPETITOR = "competitor"
    CUSTOMER = "customer"
    ALL = (OPERATOR, COMPETITOR, CUSTOMER)


class ApiKey(Base):
    """A bearer key of the HTTP API. Only its SHA-256 is kept: the key is shown once, when created.
    Keys are random 256-bit tokens, so a plain hash (no salt, no slow KDF) cannot be brute-forced."""

    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # ApiRole
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the whole key
    key_prefix: Mapped[str] = mapped_column(String(16))  # its first characters, to tell keys apart in lists
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class JobStatus:
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    FINISHED = (SUCCEEDED, FAILED, CANCELLED)


class UploadedFile(Base):
    """A customer's dataset, uploaded through the API and checked on arrival (``jobs`` reads it).
    Deleting it removes the bytes (and the copies its jobs made, ``jobs.copies``) and keeps the row
    (``deleted_at``), so the jobs made from it stay true."""

    __tablename__ = "uploaded_file"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # "file-" + random hex
    owner_key_id: Mapped[int] = mapped_column(ForeignKey("api_key.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))  # as uploaded (display only; never a path)
    kind: Mapped[str] = mapped_column(String(8))  # text | image
    format: Mapped[str] = mapped_column(String(16))  # jsonl | csv | parquet | zip
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer)  # records (text) or images (image)
    columns: Mapped[list[Any]] = mapped_column(default=list)  # column names (text); [] for image
    path: Mapped[str] = mapped_column(Text)  # where the bytes are, under data_dir
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    deleted_at: Mapped[datetime | None]


class Job(Base):
    """A customer's training job: the reigning champion's script of the task type, run in the sandbox
    on the customer's file. Its run (origin ``job``) holds the attempt, logs, artifact and score."""

    __tablename__ = "job"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # "job-" + random hex
    owner_key_id: Mapped[int] = mapped_column(ForeignKey("api_key.id"), index=True)
    file_id: Mapped[str] = mapped_column(ForeignKey("uploaded_file.id"))
    task_type: Mapped[str] = mapped_column(String(16))
    base_model: Mapped[str] = mapped_column(Text)
    field_mapping: Mapped[dict[str, Any]] = mapped_column(default=dict)
    budget_tier: Mapped[str] = mapped_column(String(32))
    budget_seconds: Mapped[float] = mapped_column(Float)
    validation_share: Mapped[float] = mapped_column(Float, default=0.0)  # 0: train on every row, no score
    seed: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED, index=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    competitor_id: Mapped[int | None] = mapped_column(ForeignKey("competitor.id"))  # the champion, when started
    run_id: Mapped[int | None] = mapped_column(ForeignKey("run.id"))
    model_id: Mapped[str | None] = mapped_column(String(40))  # the registered model, when it succeeded
    score: Mapped[float | None] = mapped_column(Float)  # on the validation share, when one was held out
    failure_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # The worker running it and its heartbeat: a job whose worker stopped beating is queued again.
    worker_id: Mapped[str | None] = mapped_column(String(64))
    heartbeat_at: Mapped[datetime | None]
    # Queued again after the platform could not start its try: no worker claims it before this time (the
    # store's clock, as heartbeats); cleared when a try starts (migration 0016, ``jobs.queue``).
    not_before: Mapped[datetime | None]

    owner_key: Mapped[ApiKey] = relationship()
    competitor: Mapped[Competitor | None] = relationship()
    events: Mapped[list[JobEvent]] = relationship(back_populates="job", order_by="JobEvent.id", cascade="all, delete-orphan")


class JobEvent(Base):
    """One step of a job, in order: queued, started, progress, finished, failed, cancelled."""

    __tablename__ = "job_event"

    id: Mapped[int] = mapped_column(primary_key=True)  # increasing: the SSE event id clients resume from
    job_id: Mapped[str] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)

    job: Mapped[Job] = relationship(back_populates="events")


class RegisteredModel(Base):
    """A trained model in the registry: a Hugging Face-layout folder with a model card. A job's model
    belongs to the job's customer; a champion's (``owner_key_id`` None) is public. A deleted one keeps
    its row (``deleted_at``)."""

    __tablename__ = "registered_model"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # "model-" + random hex
    owner_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_key.id"), index=True)
    source: Mapped[str] = mapped_column(String(16))  # job | champion
    job_id: Mapped[str | None] = mapped_column(ForeignKey("job.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("run.id"))
    competitor_id: Mapped[int | None] = mapped_column(ForeignKey("competitor.id"))  # whose script trained it
    task_type: Mapped[str] = mapped_column(String(16))
    base_model: Mapped[str] = mapped_column(Text)
    dataset_digest: Mapped[str] = mapped_column(String(64))
    score: Mapped[float | None] = mapped_column(Float)
    path: Mapped[str] = mapped_column(Text)  # the model folder, under data_dir
    digest: Mapped[str] = mapped_column(String(64))  # sha256 of the folder's files, as the artifact check computes it
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    published_url: Mapped[str | None] = mapped_column(Text)  # the Hub repository, once published
    # What the model card states (registry.card.CardFacts.to_json): script, license, how the score was measured.
    card: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The bytes of its files as registered (the sizes in its card): what it counts against its key's
    # api.model_quota_bytes until it is deleted, summed without reading the card of each (migration 0018).
    size_bytes: Mapped[int] = mapped_column(BigInteger, server_default="0")
    # Deleted (registry.deletion): its files are removed and the row kept, so that the jobs, runs and signed
    # records naming it stay true; by which key (None: `trainarena models delete` on the server). Migration 0018.
    deleted_at: Mapped[datetime | None]
    deleted_by_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_key.id"))

    competitor: Mapped[Competitor | None] = relationship()
    deleted_by_key: Mapped[ApiKey | None] = relationship(foreign_keys=[deleted_by_key_id])
