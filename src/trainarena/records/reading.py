"""Reading the transparency log back: signed tree heads, entries by what they record (as one caller
may see them), and the proofs a verifier checks with ``records.merkle`` against a signed head.

What the API serves and a verifier asks for; nothing here writes. Visibility follows the rest of the
platform: a customer's job is private (``RunOrigin.PRIVATE``), so the entries recorded for a job
(``job_id`` set) are shown only to the job's owner and to operators; every other entry is public to
any reader. Proofs carry only hashes, so an inclusion proof of a public entry reveals nothing of the
private entries beside it in the tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from trainarena.records.log import latest_head, leaf_hashes
from trainarena.records.merkle import CachedLeaves, consistency_proof, inclusion_proof
from trainarena.records.signing import envelope_payload
from trainarena.store.log_tables import LogEntry, TreeHead
from trainarena.store.models import Job

__all__ = [
    "EntryFilter", "UnknownEntryError", "UnknownHeadError", "Visibility", "consistency", "entry_json", "find_entries",
    "get_entry", "head_json", "proofs_against", "tree_head",
]


class UnknownHeadError(LookupError):
    """No signed tree head of that size (or none at all: nothing was logged yet)."""


class UnknownEntryError(LookupError):
    """No log entry at that index that this caller may see."""


@dataclass(frozen=True)
class Visibility:
    """Whose job entries a reader sees: ``owner`` (an API key's id) sees its own jobs' entries and every
    entry of no job; ``owner`` None (an operator, or the CLI on the store's machine) sees everything."""

    owner: int | None = None


@dataclass(frozen=True)
class EntryFilter:
    tournament_id: int | None = None
    run_id: int | None = None
    job_id: str | None = None
    kind: str | None = None


def tree_head(session: Session, size: int | None = None) -> TreeHead:
    """The signed head of ``size`` entries, or the latest; UnknownHeadError when there is none."""
    head = latest_head(session) if size is None else session.get(TreeHead, size)
    if head is None:
        latest = latest_head(session)
        if latest is None:
            raise UnknownHeadError("the log is empty: nothing has been recorded yet, so no tree head is signed")
        raise UnknownHeadError(f"no signed tree head of size {size}; the log has one after each append, "
                               f"sizes 1 to {latest.size}")
    return head


def head_json(head: TreeHead) -> dict[str, Any]:
    """A signed tree head: its size and root, and the DSSE envelope of {log_id, tree_size, root_hash,
    timestamp} that a verifier checks with the operator's public key."""
    payload = envelope_payload(head.envelope)
    return {"tree_size": head.size, "root_hash": head.root_hash, "log_id": payload.get("log_id"),
            "timestamp": payload.get("timestamp"), "envelope": head.envelope}


def _visible(query: Select[Any], visibility: Visibility) -> Select[Any]:
    if visibility.owner is None:
        return query
    own_jobs = select(Job.id).where(Job.owner_key_id == visibility.owner)
    return query.where(or_(LogEntry.job_id.is_(None), LogEntry.job_id.in_(own_jobs)))


def find_entries(session: Session, head: TreeHead, visibility: Visibility, where: EntryFilter = EntryFilter(), *,
                 offset: int = 0, limit: int | None = None) -> tuple[list[LogEntry], bool]:
    """The entries under ``head`` that match ``where`` and ``visibility`` sees, in log order, from
    ``offset``; and whether more follow ``limit`` of them."""
    query = _visible(select(LogEntry).where(LogEntry.index < head.size), visibility)
    for column, value in ((LogEntry.tournament_id, where.tournament_id), (LogEntry.run_id, where.run_id),
                          (LogEntry.job_id, where.job_id), (LogEntry.kind, where.kind)):
        if value is not None:
            query = query.where(column == value)
    query = query.order_by(LogEntry.index).offset(offset)
    rows = list(session.scalars(query if limit is None else query.limit(limit + 1)))
    more = limit is not None and len(rows) > limit
    return rows[:limit] if more else rows, more


def get_entry(session: Session, head: TreeHead, index: int, visibility: Visibility) -> LogEntry:
    """Entry ``index`` of the tree under ``head``; UnknownEntryError when absent or not the caller's to see
    (the same answer for both: a customer does not learn that another's job entry exists)."""
    query = _visible(select(LogEntry).where(LogEntry.index == index, LogEntry.index < head.size), visibility)
    entry = session.scalar(query)
    if entry is None:
        raise UnknownEntryError(f"no log entry {index} (the log holds entries 0 to {head.size - 1}, "
                                "a customer's job entries only for that customer)")
    return entry


def proofs_against(session: Session, head: TreeHead, indices: list[int]) -> dict[int, list[bytes]]:
    """The RFC 6962 inclusion proof of each entry index in the tree of ``head`` (its leaves read once)."""
    leaves = leaf_hashes(session, head.size)
    cached = CachedLeaves(leaves)
    return {index: inclusion_proof(cached, index) for index in indices}


def entry_json(entry: LogEntry, head: TreeHead, proof: list[bytes]) -> dict[str, Any]:
    """An entry as served: what it records, its envelope and decoded statement (unchecked: check the
    envelope's signature), its leaf hash and its inclusion proof in the tree of ``head``."""
    return {"index": entry.index, "key": entry.key, "kind": entry.kind, "tournament_id": entry.tournament_id,
            "run_id": entry.run_id, "job_id": entry.job_id, "appended_at": entry.appended_at,
            "envelope": entry.envelope, "statement": envelope_payload(entry.envelope), "leaf_hash": entry.leaf_hash,
            "tree_size": head.size, "inclusion_proof": [step.hex() for step in proof]}


def consistency(session: Session, first: int, second: int | None = None) -> tuple[TreeHead, TreeHead, list[bytes]]:
    """The signed heads of ``first`` and ``second`` entries (the latest when None) and the RFC 6962
    proof that the first tree is a prefix of the second; ValueError when first > second."""
    new = tree_head(session, second)
    if first > new.size:
        raise ValueError(f"first ({first}) is larger than second ({new.size}): a consistency proof runs from an "
                         "older, smaller tree head to a newer one")
    old = tree_head(session, first)
    return old, new, consistency_proof(leaf_hashes(session, new.size), old.size)
