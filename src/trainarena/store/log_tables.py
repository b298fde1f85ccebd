"""The transparency log's tables (migration 0008): its entries, in append order, and the signed tree
head after each append. ``records/log.py`` is the only writer; nothing ever updates or deletes an
entry or a head (only the one ``log_state`` row changes, at each append).

Entries carry plain ids of what they record (no foreign keys): the log outlives the rows it speaks
about, and removing a tournament must never rewrite it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from trainarena.store.base import Base, utcnow

__all__ = ["LogEntry", "LogState", "TreeHead"]


class LogState(Base):
    """One row: the log's size and frontier (migration 0011). Every append first increments the size,
    which takes the write lock on SQLite and the row lock on PostgreSQL, so concurrent appenders
    (drivers, job workers) queue up there, and then replaces the frontier under that lock."""

    __tablename__ = "log_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    size: Mapped[int] = mapped_column(Integer, default=0)
    # Hex roots of the perfect subtrees of the tree of `size` leaves (records.merkle.frontier_of): an
    # append hashes only these and its leaf. None until the first append after migration 0011.
    frontier: Mapped[list[Any] | None] = mapped_column()


class LogEntry(Base):
    """One leaf of the log: a signed statement (a DSSE envelope) and the RFC 6962 hash of its leaf."""

    __tablename__ = "log_entry"

    index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # 0-based leaf index
    # What it records, unique: appending the same thing twice (a resumed driver) is a no-op.
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)  # records.statements.Kind
    tournament_id: Mapped[int | None] = mapped_column(Integer, index=True)
    run_id: Mapped[int | None] = mapped_column(Integer, index=True)
    job_id: Mapped[str | None] = mapped_column(String(40), index=True)
    envelope: Mapped[dict[str, Any]] = mapped_column()
    leaf_hash: Mapped[str] = mapped_column(String(64))  # hex of SHA-256(0x00 || canonical envelope)
    appended_at: Mapped[datetime] = mapped_column(default=utcnow)


class TreeHead(Base):
    """The signed head of the log at one size: its Merkle root, signed by the operator's key."""

    __tablename__ = "tree_head"

    size: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    root_hash: Mapped[str] = mapped_column(String(64))
    envelope: Mapped[dict[str, Any]] = mapped_column()
    signed_at: Mapped[datetime] = mapped_column(default=utcnow)
