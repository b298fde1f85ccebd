"""Repository functions for competitors: keyword-only arguments, the session injected, no commits
(the caller owns the transaction)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from trainarena.store.models import Competitor

COMPETITOR_KINDS = ("text", "image", "both")


class StoreError(ValueError):
    """A store operation that breaks a rule of the record (duplicate name, unknown competitor)."""


def add_competitor(
    session: Session,
    *,
    name: str,
    repo_url: str,
    commit: str,
    tree_hash: str,
    source_digest: str,
    entrypoint: str,
    kind: str | None = None,
) -> Competitor:
    """Record a new competitor (flushed, not committed). Raises StoreError if the name is taken."""
    if kind is not None and kind not in COMPETITOR_KINDS:
        raise StoreError(f"competitor kind {kind!r} is not one of {COMPETITOR_KINDS} (or None for any)")
    if get_competitor(session, name) is not None:
        raise StoreError(f"a competitor named {name!r} is already registered; choose another name")
    competitor = Competitor(
        name=name,
        repo_url=repo_url,
        commit=commit,
        tree_hash=tree_hash,
        source_digest=source_digest,
        entrypoint=entrypoint,
        kind=kind,
    )
    session.add(competitor)
    session.flush()
    return competitor


def get_competitor(session: Session, name: str) -> Competitor | None:
    return session.scalar(select(Competitor).where(Competitor.name == name))


def require_competitor(session: Session, name: str) -> Competitor:
    """The competitor named ``name``; StoreError naming it if there is none."""
    competitor = get_competitor(session, name)
    if competitor is None:
        raise StoreError(f"no competitor named {name!r}; register it with `trainarena competitor add`")
    return competitor


def list_competitors(session: Session) -> list[Competitor]:
    """All competitors, oldest registration first."""
    return list(session.scalars(select(Competitor).order_by(Competitor.registered_at, Competitor.id)))


def competitors_with_tree_hash(session: Session, tree_hash: str) -> list[Competitor]:
    """Competitors registered with exactly this git tree (copy detection)."""
    return list(session.scalars(select(Competitor).where(Competitor.tree_hash == tree_hash).order_by(Competitor.id)))


def competitors_with_source_digest(session: Session, digest: str) -> list[Competitor]:
    """Competitors whose normalized source has this digest (copy detection beyond the tree hash)."""
    return list(
        session.scalars(select(Competitor).where(Competitor.source_digest == digest).order_by(Competitor.id))
    )
