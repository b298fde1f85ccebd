"""The transparency log in the store: append a signed statement, sign the new tree head.

Append-only: an entry is the DSSE envelope of one statement; its leaf is the envelope's canonical
JSON, hashed as RFC 6962 prescribes (``records.merkle``). After each append the operator signs the
tree head (size, root, time), so a verifier holding two heads can ask for a consistency proof, and
one holding an entry and a head for an inclusion proof. Appends run inside the caller's transaction,
beside the rows they speak about: a statement is in the log exactly when what it states is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from trainarena.records.merkle import leaf_hash, root_hash
from trainarena.records.signing import OperatorKey, canonical_json, sign_payload
from trainarena.records.statements import PAYLOAD_TYPE, Kind
from trainarena.store.log_tables import LogEntry, LogState, TreeHead

__all__ = ["TREE_HEAD_TYPE", "Subjects", "append", "entry_leaf_hash", "leaf_hashes", "latest_head", "tree_head_payload"]

# DSSE payload type of a signed tree head.
TREE_HEAD_TYPE = "application/vnd.trainarena.tree-head+json"


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
            "timestamp": timestamp.astimezone(UTC).isoformat(timespec="microseconds")}


def append(session: Session, key: OperatorKey, entry_key: str, kind: Kind, statement: dict[str, Any],
           about: Subjects = Subjects()) -> int:
    """Sign ``statement``, append it under ``entry_key`` and sign the new tree head; returns its index.
    An entry already logged under ``entry_key`` is not appended again (its index is returned)."""
    existing = session.scalar(select(LogEntry.index).where(LogEntry.key == entry_key))
    if existing is not None:
        return existing
    # Taking the next index increments the size first: appenders queue on that row's lock.
    size = session.execute(update(LogState).where(LogState.id == 1).values(size=LogState.size + 1)
                           .returning(LogState.size)).scalar_one()
    index = size - 1
    envelope = sign_payload(key, PAYLOAD_TYPE, statement)
    session.add(LogEntry(index=index, key=entry_key, kind=kind.value, tournament_id=about.tournament_id,
                         run_id=about.run_id, job_id=about.job_id, envelope=envelope,
                         leaf_hash=entry_leaf_hash(envelope).hex()))
    session.flush()
    leaves = leaf_hashes(session)
    if len(leaves) != size:
        raise RuntimeError(f"the transparency log holds {len(leaves)} entries but its size says {size}: "
                           "entries were removed from the store; export and verify the log")
    now = datetime.now(UTC)
    root = root_hash(leaves)
    session.add(TreeHead(size=size, root_hash=root.hex(), signed_at=now,
                         envelope=sign_payload(key, TREE_HEAD_TYPE, tree_head_payload(key, size, root, now))))
    return index


def leaf_hashes(session: Session, size: int | None = None) -> list[bytes]:
    """The leaf hashes of the first ``size`` entries (all without it), in log order."""
    query = select(LogEntry.leaf_hash).order_by(LogEntry.index)
    if size is not None:
        query = query.where(LogEntry.index < size)
    return [bytes.fromhex(value) for value in session.scalars(query)]


def latest_head(session: Session) -> TreeHead | None:
    return session.scalar(select(TreeHead).order_by(TreeHead.size.desc()).limit(1))
