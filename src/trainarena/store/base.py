"""The declarative base of every stored table, and the UTC time type they share."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, MetaData, TypeDecorator, func, select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session

__all__ = ["NAMING_CONVENTION", "Base", "JSONDocument", "UTCDateTime", "database_now", "json_safe", "utcnow"]

# Deterministic constraint names, so migrations can address them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def database_now(session: Session) -> datetime:
    """The store's clock, timezone-aware UTC, for a time written by one process and compared with a time
    taken by another (a job's heartbeat and the staleness cutoff). On PostgreSQL the server's ``now()``
    (the transaction's start) in whatever zone the session has, converted: one clock for every host on
    the store. SQLite has no server: its ``'now'`` is the calling process's own clock, so this is
    :func:`utcnow` (a SQLite store lives on one host, whose processes share that clock)."""
    if session.get_bind().dialect.name == "sqlite":
        return utcnow()
    now = session.scalar(select(func.now()))
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise TypeError(f"the database's now() gave {now!r}, not a time with a zone")
    return now.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A DateTime stored as naive UTC (SQLite keeps no zone) and returned timezone-aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: store timezone-aware UTC times")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def json_safe(value: Any) -> Any:
    """``value`` with each NaN or infinite float as its name ('nan', 'inf', '-inf'), which JSON proper
    refuses (PostgreSQL's json type, canonical JSON): a diverged model's evaluation details."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


class JSONDocument(TypeDecorator[Any]):
    """JSON stored alike on every backend: NaN and infinities as their names (``json_safe``), where
    SQLite would keep Python's NaN token and PostgreSQL would refuse the row."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return json_safe(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONDocument(), list[Any]: JSONDocument()}
