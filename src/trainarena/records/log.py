"""The transparency log in the store: append a signed statement, sign the new tree head.

Append-only: an entry is the DSSE envelope of one statement; its leaf is the envelope's canonical
JSON, hashed as RFC 6962 prescribes (``records.merkle``). After each append the operator signs the
tree head (size, root, time), so a verifier holding two heads can ask for a consistency proof, and
one holding an entry and a head for an inclusion proof. The root comes from the log's frontier
(``records.merkle``), kept in ``log_state``, so an append costs O(log n) hashes, not one per entry.
Appends run inside the caller's transaction, beside the rows they speak about: a statement is in the
log exactly when what it states is stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from trainarena.records.merkle import frontier_append, frontier_of, frontier_root, leaf_hash
from trainarena.records.signing import OperatorKey, canonical_json, sign_payload
from trainarena.records.statements import PAYLOAD_TYPE, Kind
from trainarena.store.base import utcnow
from trainarena.store.log_tables import LogEntry, LogState, TreeHead

__all__ = ["TREE_HEAD_TYPE", "Subjects", "append", "entry_leaf_hash", "leaf_hashes", "latest_head", "tree_head_payload"]

# DSSE payload type of a signed tree head.
TREE_HEAD_TYPE = "application/vnd.trainarena.tree-head+json"
# What a head signed since the rule says of its time, so verify holds it to it (heads signed before
# took the raw clock, which may have stepped back).
TIME_RULE = "non-decreasing"


@dataclass(frozen=True)
class Subjects:
    """What an entry is about, for finding it again (plain ids: the log outlives the rows)."""

    tournament_id: int | None = None
    run_id: int | None = None
    job_id: str | None = None


def entry_leaf_hash(envelope: dict[str, Any]) -> bytes:
    """The RFC 6962 leaf hash of an entry: of its envelope's canonical JSON."""
    return leaf_hash(canonical_json(envelope))


def tree_head_payload(key: OperatorKey | str, size: int, root: bytes, timestamp: datetime) -> dict[str, Any]:
    keyid = key if isinstance(key, str) else key.keyid
    return {"log_id": keyid, "tree_size": size, "root_hash": root.hex(),
            "timestamp": timestamp.astimezone(UTC).isoformat(timespec="microseconds"), "time_rule": TIME_RULE}


def append(session: Session, key: OperatorKey, entry_key: str, kind: Kind, statement: dict[str, Any],
           about: Subjects = Subjects(), *, clock: Callable[[], datetime] = utcnow) -> int:
    """Sign ``statement``, append it under ``entry_key`` and sign the new tree head; returns its index.
    An entry already logged under ``entry_key`` is not appended again (its index is returned).
    O(log n): the new root comes from the stored frontier and the new leaf, no other leaf is read.
    The head's timestamp is ``clock()``, or the previous head's where that is later (a clock stepped
    back): a head never predates the one before it, which ``verify`` checks."""
    existing = session.scalar(select(LogEntry.index).where(LogEntry.key == entry_key))
    if existing is not None:
        return existing
    # Taking the next index increments the size first: appenders queue on that row's lock.
    size, stored = session.execute(update(LogState).where(LogState.id == 1).values(size=LogState.size + 1)
                                   .returning(LogState.size, LogState.frontier)).one()
    index = size - 1
    frontier = _frontier_before(session, index, stored)
    envelope = sign_payload(key, PAYLOAD_TYPE, statement)
    leaf = entry_leaf_hash(envelope)
    session.add(LogEntry(index=index, key=entry_key, kind=kind.value, tournament_id=about.tournament_id,
                         run_id=about.run_id, job_id=about.job_id, envelope=envelope, leaf_hash=leaf.hex()))
    frontier = frontier_append(frontier, index, leaf)
    session.execute(update(LogState).where(LogState.id == 1).values(frontier=[node.hex() for node in frontier]))
    now = _signing_time(session, index, clock())
    root = frontier_root(frontier)
    session.add(TreeHead(size=size, root_hash=root.hex(), signed_at=now,
                         envelope=sign_payload(key, TREE_HEAD_TYPE, tree_head_payload(key, size, root, now))))
    return index


def _signing_time(session: Session, size: int, now: datetime) -> datetime:
    """``now``, or the signed time of the head of ``size`` entries (the one before) when that is later."""
    previous = session.get(TreeHead, size) if size else None
    if previous is None:
        return now
    signed = previous.signed_at if previous.signed_at.tzinfo else previous.signed_at.replace(tzinfo=UTC)
    return max(now, signed)


def _frontier_before(session: Session, size: int, stored: list[str] | None) -> list[bytes]:
    """The frontier of the log's first ``size`` entries, checked against the store: the first and
    last of them are there, and the frontier gives the root of the signed head of ``size``. A log
    without one (first append after migration 0011), or whose stored one is behind (a process on
    code before 0011 appended), derives it once from all its leaves."""
    if stored is None:
        return _derived(session, size)
    ends = {0, size - 1} if size else set()
    found = set(session.scalars(select(LogEntry.index).where(LogEntry.index.in_(ends))))
    if found != ends:
        raise _removed(f"lacks entry {min(ends - found)} of the {size} its size says")
    frontier = [bytes.fromhex(node) for node in stored]
    head = session.get(TreeHead, size) if size else None
    if head is not None and (len(frontier) != size.bit_count() or frontier_root(frontier).hex() != head.root_hash):
        frontier = _derived(session, size)
        if frontier_root(frontier).hex() != head.root_hash:
            raise RuntimeError(f"the transparency log's entries do not give the root of its signed head of {size} "
                               "entries: they were changed in the store; export and verify the log")
    return frontier


def _derived(session: Session, size: int) -> list[bytes]:
    leaves = leaf_hashes(session, size)
    if len(leaves) != size:
        raise _removed(f"holds {len(leaves)} entries but its size says {size}")
    return frontier_of(leaves)


def _removed(what: str) -> RuntimeError:
    return RuntimeError(f"the transparency log {what}: entries were removed from the store; export and verify the log")


def leaf_hashes(session: Session, size: int | None = None) -> list[bytes]:
    """The leaf hashes of the first ``size`` entries (all without it), in log order."""
    query = select(LogEntry.leaf_hash).order_by(LogEntry.index)
    if size is not None:
        query = query.where(LogEntry.index < size)
    return [bytes.fromhex(value) for value in session.scalars(query)]


def latest_head(session: Session) -> TreeHead | None:
    return session.scalar(select(TreeHead).order_by(TreeHead.size.desc()).limit(1))
