"""Newest-first pages of the rows customers own (uploaded files, jobs, registered models), paged in the
database: by ``offset`` and ``limit``, or on from a row a page answered (``after``, a keyset cursor)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Page:
    """One page of a listing, newest first: ``has_more`` when older rows follow the last one."""

    data: list[Any]
    has_more: bool


class UnknownCursor(LookupError):
    """An ``after`` that is no row the caller may see."""

    def __init__(self, after: str) -> None:
        super().__init__(f"after {after!r} is none of the listed ids; page on from an id a list answered, "
                         "or start again without after")  # fmt: skip


def owned_page(session: Session, model: type, owner: int | None, *, after: str | None, limit: int | None,
               offset: int = 0, public: bool = False) -> Page:  # fmt: skip
    """Rows of ``model`` of ``owner`` (everyone's when None), and with ``public`` the rows of no owner
    too, newest first, those older than the row ``after`` (an id) when given, less the first
    ``offset``; at most ``limit`` (None: all). An ``after`` that is no row ``owner`` may see is refused
    (UnknownCursor): answering the first page instead would make a client paging with a stale cursor loop."""
    query = select(model).order_by(model.created_at.desc(), model.id.desc())
    visible = {owner, None} if public else {owner}
    if owner is not None:
        query = query.where(or_(model.owner_key_id == owner, model.owner_key_id.is_(None)) if public else model.owner_key_id == owner)
    if after is not None:
        anchor = session.get(model, after)
        if anchor is None or (owner is not None and anchor.owner_key_id not in visible):
            raise UnknownCursor(after)
        query = query.where((model.created_at < anchor.created_at)
                            | ((model.created_at == anchor.created_at) & (model.id < anchor.id)))  # fmt: skip
    if offset:
        query = query.offset(offset)
    if limit is None:
        return Page(list(session.scalars(query)), False)
    rows = list(session.scalars(query.limit(limit + 1)))
    return Page(rows[:limit], len(rows) > limit)
