"""SQLAlchemy 2 models of everything trainarena records.

One table per entity. Enumerations are stored as short strings (portable across SQLite and PostgreSQL,
no native enum types to migrate). Times are stored as UTC and always read back timezone-aware.
The Alembic migrations in ``store/migrations/versions`` must match these models; a test compares them.
The base and the time type are in ``store/base.py``; the service's tables (keys, files, jobs, models)
in ``store/service_tables.py``, the transparency log's in ``store/log_tables.py``, re-exported here so every table is importable from one place.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trainarena.contract import RunStatus
from trainarena.store.base import NAMING_CONVENTION, Base, UTCDateTime, database_now, utcnow
from trainarena.store.log_tables import TreeHead
from trainarena.store.service_tables import ApiKey, ApiRole, Job, JobEvent, JobStatus, RegisteredModel, UploadedFile

__all__ = [
    "NAMING_CONVENTION", "ApiKey", "ApiRole", "AttemptStatus", "Base", "ChampionHistory", "Competitor", "EvaluationRow",
    "Job", "JobEvent", "JobStatus", "MatchRow", "RegisteredModel", "Round", "Run", "RunAttempt", "RunOrigin", "StoredTask",
    "TaskPool", "TaskRow", "Tournament", "TournamentDraw", "TournamentEntrant", "TournamentLease", "TournamentStatus", "TreeHead",
    "UTCDateTime", "UploadedFile", "WeightRow", "WeightVector", "WeightVectorEntry", "database_now", "utcnow",
]


class TournamentStatus:
    CREATED = "created"
    RUNNING = "running"
    FINISHED = "finished"
    CANCELLED = "cancelled"  # by the operator (`tournament cancel`): never driven again; outcome_reason says why
    ENDED = (FINISHED, CANCELLED)


class Competitor(Base):
    __tablename__ = "competitor"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    repo_url: Mapped[str] = mapped_column(Text)
    commit: Mapped[str] = mapped_column("commit_sha", String(64))
    tree_hash: Mapped[str] = mapped_column(String(128), index=True)
    source_digest: Mapped[str] = mapped_column(String(128), index=True)
    entrypoint: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str | None] = mapped_column(String(8))  # text | image | both; None: any
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)
    hotkey: Mapped[str | None] = mapped_column(String(64))  # SS58 address the weights go to; None: none given
    # Copy check at registration (submissions.copies): the closest competitor then and the similarity,
    # and the flag for the operator (tree_hash | source_digest | near_duplicate; None: not flagged).
    similar_to: Mapped[str | None] = mapped_column(String(100))
    similarity: Mapped[float | None] = mapped_column(Float)
    copy_flag: Mapped[str | None] = mapped_column(String(16))
    # The competitor key that registered it, which may retire it (None: the CLI or an operator's key).
    owner_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_key.id"))
    # When it was retired and by which key (None: on the server's command line): a retired competitor
    # enters no tournament created afterwards; the row stays, as the records name it.
    retired_at: Mapped[datetime | None]
    retired_by_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_key.id"))

    def __repr__(self) -> str:
        return f"Competitor(name={self.name!r}, commit={self.commit[:12]!r})"


class Tournament(Base):
    __tablename__ = "tournament"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(8))  # text | image
    status: Mapped[str] = mapped_column(String(16), default=TournamentStatus.CREATED)
    seed: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    champion_before_id: Mapped[int | None] = mapped_column(ForeignKey("competitor.id"))
    champion_after_id: Mapped[int | None] = mapped_column(ForeignKey("competitor.id"))
    outcome_reason: Mapped[str | None] = mapped_column(Text)
    # Weight the tournament's weight rules leave undistributed (weights + remainder sum to 1).
    weight_remainder: Mapped[float | None] = mapped_column(Float)
    # The TournamentRules it is played under (settings.rules as a dict), fixed when it is created from a
    # pool or first driven: its record is replayed under them, whatever the settings say later.
    rules: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    champion_before: Mapped[Competitor | None] = relationship(foreign_keys=[champion_before_id])
    champion_after: Mapped[Competitor | None] = relationship(foreign_keys=[champion_after_id])
    entrants: Mapped[list[TournamentEntrant]] = relationship(
        back_populates="tournament", order_by="TournamentEntrant.position", cascade="all, delete-orphan"
    )
    rounds: Mapped[list[Round]] = relationship(
        back_populates="tournament", order_by="Round.index", cascade="all, delete-orphan"
    )


class TournamentEntrant(Base):
    """Who entered a tournament, in entry order (the engine's seeding depends on the order)."""

    __tablename__ = "tournament_entrant"
    __table_args__ = (UniqueConstraint("tournament_id", "competitor_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tournament_id: Mapped[int] = mapped_column(ForeignKey("tournament.id", ondelete="CASCADE"))
    competitor_id: Mapped[int] = mapped_column(ForeignKey("competitor.id"))
    position: Mapped[int] = mapped_column(Integer)

    tournament: Mapped[Tournament] = relationship(back_populates="entrants")
    competitor: Mapped[Competitor] = relationship()


class Round(Base):
    __tablename__ = "round"
    __table_args__ = (UniqueConstraint("tournament_id", "index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tournament_id: Mapped[int] = mapped_column(ForeignKey("tournament.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(16))  # group | knockout | boss
    byes: Mapped[list[Any]] = mapped_column(default=list)  # competitor names

    tournament: Mapped[Tournament] = relationship(back_populates="rounds")
    matches: Mapped[list[MatchRow]] = relationship(
        back_populates="round", order_by="MatchRow.position", cascade="all, delete-orphan"
    )


class MatchRow(Base):
    """A match of a round (named ``MatchRow`` so it does not shadow the engine's ``Match``)."""

    __tablename__ = "match"
    # The second: a round's matches in play order (run_list.PLAY_ORDER) without a sort; unique, as the
    # engine numbers them, so that the database may walk a tournament's runs in that order from indexes.
    __table_args__ = (UniqueConstraint("round_id", "match_id"),
                      Index("ix_match_round_id_position", "round_id", "position", unique=True))

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("round.id", ondelete="CASCADE"))
    match_id: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)  # order within the round, as the engine planned it
    competitors: Mapped[list[Any]] = mapped_column()  # competitor names, in the engine's order
    tasks_count: Mapped[int] = mapped_column(Integer)
    advance_count: Mapped[int] = mapped_column(Integer)

    round: Mapped[Round] = relationship(back_populates="matches")
    tasks: Mapped[list[TaskRow]] = relationship(
        back_populates="match", order_by="TaskRow.index", cascade="all, delete-orphan"
    )


class TaskRow(Base):
    """One task a match trains on, or that one ad-hoc run trained on (no match): its full definition,
    so the run can be replayed and audited."""

    __tablename__ = "task"
    __table_args__ = (UniqueConstraint("match_row_id", "index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    match_row_id: Mapped[int | None] = mapped_column(ForeignKey("match.id", ondelete="CASCADE"))  # None: ad hoc
    index: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column()  # type, base model, dataset, budget, seed
    prepared: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # prepared paths, once prepared
    # runs.task_key of the definition (seed left out): runs with equal keys are comparable.
    digest: Mapped[str | None] = mapped_column(String(24), index=True)

    match: Mapped[MatchRow | None] = relationship(back_populates="tasks")
    runs: Mapped[list[Run]] = relationship(back_populates="task", order_by="Run.id", cascade="all, delete-orphan")


class _CountedAttemptValue:
    """A read-only attribute of a run that is the same attribute of its counted attempt, or None."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, run: Run | None, owner: type | None = None) -> Any:
        if run is None:
            return self
        return None if run.counted_attempt is None else getattr(run.counted_attempt, self.name)

    def __set__(self, run: Run, value: object) -> None:
        raise AttributeError(f"Run.{self.name} is its counted attempt's: set it on a RunAttempt and count that attempt")


class RunOrigin:
    """Why a run exists: played in a tournament, started with ``trainarena run``, one of the two
    references ``trainarena run`` compares with (the house script's run, the untrained base model), a
    customer's training job, or ``trainarena audit``'s re-run of a stored run (``Run.audit_of_id``):
    a re-measurement, not one more run of the competitor's, so no task board counts it."""

    TOURNAMENT = "tournament"
    ADHOC = "adhoc"
    AUDIT = "audit"
    JOB = "job"
    HOUSE = "house"
    BASE_MODEL = "base_model"
    REFERENCES = (HOUSE, BASE_MODEL)
    # A customer's data and logs: shown to the customer (through its job) and to operators (the CLI),
    # never in run listings, run pages or task boards that competitors or the public read.
    PRIVATE = (JOB,)


class Run(Base):
    """One script on one task. Each try is a :class:`RunAttempt`; the run's result (score, artifact,
    logs, failure) is the counted attempt's, read through the properties below. A tournament run is a
    registered competitor's; an ad-hoc run is a registered competitor's or a working tree's (``source_*``);
    a reference run has neither."""

    __tablename__ = "run"
    # The index: a task's runs by id, the last key of run_list.PLAY_ORDER (the unique pair orders them
    # by competitor, and a reference or ad-hoc run has none).
    __table_args__ = (UniqueConstraint("task_id", "competitor_id"), Index("ix_run_task_id_id", "task_id", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"))
    competitor_id: Mapped[int | None] = mapped_column(ForeignKey("competitor.id"))
    origin: Mapped[str] = mapped_column(String(16), default=RunOrigin.TOURNAMENT, server_default=RunOrigin.TOURNAMENT, index=True)
    # An unregistered working tree (``trainarena run --repo``): its path, HEAD commit when it is a git
    # repository, whether it had uncommitted changes, and the snapshot the sandbox ran.
    source_path: Mapped[str | None] = mapped_column(Text)
    source_commit: Mapped[str | None] = mapped_column(String(64))
    source_dirty: Mapped[bool | None] = mapped_column(Boolean)
    snapshot_path: Mapped[str | None] = mapped_column(Text)
    # An audit's run (origin audit): the run it re-measures (None once that run is deleted).
    audit_of_id: Mapped[int | None] = mapped_column(ForeignKey("run.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.PENDING.value, index=True)
    # use_alter: run and run_attempt reference each other; the attempt rows are created first.
    counted_attempt_id: Mapped[int | None] = mapped_column(
        ForeignKey("run_attempt.id", ondelete="SET NULL", use_alter=True)
    )
    # Why the run was given up with no attempt to count (interrupted too often); None otherwise.
    abandoned_reason: Mapped[str | None] = mapped_column(Text)

    task: Mapped[TaskRow] = relationship(back_populates="runs")
    competitor: Mapped[Competitor | None] = relationship()
    attempt_records: Mapped[list[RunAttempt]] = relationship(
        back_populates="run",
        foreign_keys="RunAttempt.run_id",
        order_by="RunAttempt.number",
        cascade="all, delete-orphan",
    )
    # post_update: the counted attempt is set after both rows exist (the foreign keys form a cycle).
    counted_attempt: Mapped[RunAttempt | None] = relationship(foreign_keys=[counted_attempt_id], post_update=True)

    @property
    def run_status(self) -> RunStatus:
        return RunStatus(self.status)

    @property
    def attempts(self) -> int:
        """Attempts started so far (the number of the latest one)."""
        return self.attempt_records[-1].number if self.attempt_records else 0

    @property
    def tries(self) -> int:
        """Attempts that cost the competitor a try: all but those the platform withdrew on purpose."""
        return sum(a.status != AttemptStatus.WITHDRAWN for a in self.attempt_records)

    @property
    def failure_reason(self) -> str | None:
        return self.abandoned_reason if self.counted_attempt is None else self.counted_attempt.failure_reason

    # The counted attempt's values (None while no attempt counts), read as the run's own.
    evaluation = _CountedAttemptValue()
    started_at = _CountedAttemptValue()
    finished_at = _CountedAttemptValue()
    wall_seconds = _CountedAttemptValue()
    log_path = _CountedAttemptValue()
    artifact_path = _CountedAttemptValue()
    artifact_digest = _CountedAttemptValue()


class AttemptStatus:
    """An attempt is RUNNING, ended with one of the finished run statuses, or INTERRUPTED: its driver
    stopped (died, or lost its lease) before storing a report, and a later attempt ran instead; or
    WITHDRAWN: the platform stopped it on purpose (its driver handled SIGINT or SIGTERM), or, for a
    customer's job, could not start it (``RunNotStarted``: a full disk, no node), so it costs the
    competitor or the job no try (``lease.max_attempts``, ``jobs.max_attempts`` count the others)."""

    RUNNING = RunStatus.RUNNING.value
    INTERRUPTED = "interrupted"
    WITHDRAWN = "withdrawn"


class RunAttempt(Base):
    """One try of a run: who executed it and what came of it (an interrupted try stays recorded)."""

    __tablename__ = "run_attempt"
    __table_args__ = (UniqueConstraint("run_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)  # 1 for the first try
    status: Mapped[str] = mapped_column(String(16), default=AttemptStatus.RUNNING)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    wall_seconds: Mapped[float | None] = mapped_column(Float)
    log_path: Mapped[str | None] = mapped_column(Text)
    artifact_path: Mapped[str | None] = mapped_column(Text)
    artifact_digest: Mapped[str | None] = mapped_column(String(128))  # sha256 hex
    failure_reason: Mapped[str | None] = mapped_column(Text)
    # The driver process that executed it (None for attempts recorded before attempts had rows).
    driver_host: Mapped[str | None] = mapped_column(String(255))
    driver_pid: Mapped[int | None] = mapped_column(Integer)

    run: Mapped[Run] = relationship(back_populates="attempt_records", foreign_keys=[run_id])
    evaluation: Mapped[EvaluationRow | None] = relationship(
        back_populates="attempt", cascade="all, delete-orphan", uselist=False
    )

    def interrupt(self, reason: str) -> None:
        """The attempt ended without a report: recorded as interrupted, with ``reason``."""
        self.status = AttemptStatus.INTERRUPTED
        self.finished_at = utcnow()
        self.failure_reason = reason

    def withdraw(self, reason: str) -> None:
        """The platform stopped the attempt on purpose: recorded as withdrawn (no try of the competitor's)."""
        self.status = AttemptStatus.WITHDRAWN
        self.finished_at = utcnow()
        self.failure_reason = reason


class EvaluationRow(Base):
    """The score of one attempt's artifact on the hidden split."""

    __tablename__ = "evaluation"

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("run_attempt.id", ondelete="CASCADE"), unique=True)
    score: Mapped[float | None] = mapped_column(Float)
    direction: Mapped[str] = mapped_column(String(8))  # lower | higher
    lead_unit: Mapped[float | None] = mapped_column(Float)  # the task's lead scale (engine.paired); null: |score|
    failure: Mapped[str | None] = mapped_column(Text)
    per_example: Mapped[list[Any]] = mapped_column(default=list)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    evaluated_at: Mapped[datetime] = mapped_column(default=utcnow)

    attempt: Mapped[RunAttempt] = relationship(back_populates="evaluation")


class TournamentLease(Base):
    """Which driver process may drive a tournament, until when (store/leases.py takes and renews it)."""

    __tablename__ = "tournament_lease"

    tournament_id: Mapped[int] = mapped_column(ForeignKey("tournament.id", ondelete="CASCADE"), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(64))  # random per driver: a restarted pid is a new owner
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    acquired_at: Mapped[datetime] = mapped_column()
    heartbeat_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()


class ChampionHistory(Base):
    """Each crowning: the latest row of a kind is that kind's reigning champion."""

    __tablename__ = "champion_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), index=True)
    competitor_id: Mapped[int] = mapped_column(ForeignKey("competitor.id"))
    tournament_id: Mapped[int | None] = mapped_column(ForeignKey("tournament.id"))
    crowned_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Its champion's models are to go into the registry (registry.register_champions was on when it was
    # crowned; set in the crowning's transaction): a registration the process did not live to do is
    # owed, whatever was crowned since (registry.champions). Migration 0017.
    models_due: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    competitor: Mapped[Competitor] = relationship()
    tournament: Mapped[Tournament | None] = relationship()


class WeightRow(Base):
    __tablename__ = "weight"
    __table_args__ = (UniqueConstraint("tournament_id", "competitor_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tournament_id: Mapped[int] = mapped_column(ForeignKey("tournament.id", ondelete="CASCADE"))
    competitor_id: Mapped[int] = mapped_column(ForeignKey("competitor.id"))
    weight: Mapped[float] = mapped_column(Float)

    competitor: Mapped[Competitor] = relationship()


class TaskPool(Base):
    """A named group of stored tasks of one kind (text or image) that tournaments draw from."""

    __tablename__ = "task_pool"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(8))  # text | image
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    tasks: Mapped[list[StoredTask]] = relationship(back_populates="pool", order_by="StoredTask.id")


class StoredTask(Base):
    """A task an operator added (``trainarena task add``): its resolved definition, whose split key
    makes its hidden split secret, and the digests of what it was made of when it was added."""

    __tablename__ = "stored_task"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("task_pool.id"), index=True)
    task_type: Mapped[str] = mapped_column(String(16))
    definition: Mapped[dict[str, Any]] = mapped_column()  # runs.definition_json of the resolved task
    base_model_digest: Mapped[str] = mapped_column(String(64))  # sha256 hex of the model's files
    dataset_digest: Mapped[str] = mapped_column(String(64))  # sha256 hex of the dataset file or folder
    hidden_digest: Mapped[str] = mapped_column(String(64))  # sha256 hex of the hidden split made at add time
    train_rows: Mapped[int] = mapped_column(Integer)
    hidden_rows: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    pool: Mapped[TaskPool] = relationship(back_populates="tasks")


class TournamentDraw(Base):
    """Which stored tasks a pool tournament drew, in play order (without replacement), and when its
    entry closed."""

    __tablename__ = "tournament_draw"

    tournament_id: Mapped[int] = mapped_column(ForeignKey("tournament.id", ondelete="CASCADE"), primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("task_pool.id"), index=True)
    task_names: Mapped[list[Any]] = mapped_column()
    entry_closes_at: Mapped[datetime] = mapped_column()

    pool: Mapped[TaskPool] = relationship()


class WeightVector(Base):
    """One published weight vector: when, from which tournaments, with which hybrid ratio. Its entries are
    the competitors' weights; ``sum(entries) + undistributed + fallback == 1``."""

    __tablename__ = "weight_vector"

    id: Mapped[int] = mapped_column(primary_key=True)
    published_at: Mapped[datetime] = mapped_column(index=True)
    ratio: Mapped[float] = mapped_column(Float)  # the tournament share of the hybrid schedule
    week: Mapped[int | None] = mapped_column(Integer)  # weeks since the hybrid start; None: hybrid mode off
    undistributed: Mapped[float] = mapped_column(Float)
    fallback: Mapped[float] = mapped_column(Float)
    text_tournament_id: Mapped[int | None] = mapped_column(ForeignKey("tournament.id"))
    image_tournament_id: Mapped[int | None] = mapped_column(ForeignKey("tournament.id"))

    text_tournament: Mapped[Tournament | None] = relationship(foreign_keys=[text_tournament_id])
    image_tournament: Mapped[Tournament | None] = relationship(foreign_keys=[image_tournament_id])
    entries: Mapped[list[WeightVectorEntry]] = relationship(
        back_populates="vector", order_by="WeightVectorEntry.position", cascade="all, delete-orphan"
    )


class WeightVectorEntry(Base):
    """One competitor's weight in a published vector (position: heaviest first, ties by name)."""

    __tablename__ = "weight_vector_entry"
    __table_args__ = (UniqueConstraint("vector_id", "competitor_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    vector_id: Mapped[int] = mapped_column(ForeignKey("weight_vector.id", ondelete="CASCADE"))
    competitor_id: Mapped[int] = mapped_column(ForeignKey("competitor.id"))
    position: Mapped[int] = mapped_column(Integer)
    weight: Mapped[float] = mapped_column(Float)

    vector: Mapped[WeightVector] = relationship(back_populates="entries")
    competitor: Mapped[Competitor] = relationship()
