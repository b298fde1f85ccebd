"""The schedule of ``trainarena serve``, decided from the store's facts: what is due now, or until when
to sleep. Pure (``next_action``), beside the one query that gathers the facts (``kind_facts``), so a
restarted ``serve`` decides from the store alone, and the decision is testable without a clock.

Each kind has a grid of due times, ``anchor + offset + k * every`` (``settings.schedule``). A kind is
due when the latest due time at or before now has no tournament of its pool created since; a new
store is therefore due at once. An unfinished tournament of the kind's pool is driven on, never
created again. A kind held back (a refused creation or a fault, for ``schedule.retry_after_fault``)
is left alone until then, so nothing is retried in a tight loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from trainarena.engine.model import TOURNAMENT_KINDS
from trainarena.settings import ScheduleRules
from trainarena.store import TaskPool, Tournament, TournamentDraw, TournamentStatus


@dataclass(frozen=True)
class KindFacts:
    """What the store says about one kind's scheduled pool, plus what this process holds back."""

    kind: str
    unfinished: int | None  # the oldest unfinished tournament drawing from the pool
    last_created_at: datetime | None  # the latest tournament drawing from the pool
    held_back_until: datetime | None = None


@dataclass(frozen=True)
class Create:
    kind: str
    pool: str
    due_at: datetime


@dataclass(frozen=True)
class Drive:
    kind: str
    tournament_id: int


@dataclass(frozen=True)
class Sleep:
    until: datetime | None  # None: no kind is enabled, nothing will ever be due


Action = Create | Drive | Sleep


def grid(kind: str, rules: ScheduleRules) -> tuple[datetime, timedelta]:
    """The kind's first due time and its period."""
    if kind == "text":
        return rules.anchor, rules.text_every
    return rules.anchor + rules.image_offset, rules.image_every


def latest_due(kind: str, rules: ScheduleRules, now: datetime) -> datetime | None:
    """The latest due time at or before ``now`` (None before the grid starts)."""
    start, every = grid(kind, rules)
    if now < start:
        return None
    return start + every * ((now - start) // every)


def next_due(kind: str, rules: ScheduleRules, now: datetime) -> datetime:
    """The first due time strictly after ``now``."""
    start, every = grid(kind, rules)
    latest = latest_due(kind, rules, now)
    return start if latest is None else latest + every


def enabled(kind: str, rules: ScheduleRules) -> bool:
    return rules.text_enabled if kind == "text" else rules.image_enabled


def pool_of(kind: str, rules: ScheduleRules) -> str:
    return rules.text_pool if kind == "text" else rules.image_pool


def next_action(facts: Sequence[KindFacts], rules: ScheduleRules, now: datetime) -> Action:
    """What ``serve`` does now: create a due tournament (creations first: they are quick, and entry
    closes when they are made), else drive an unfinished one on, else sleep until the earliest time
    something can be due (a due time, or the end of a hold-back)."""
    creates: list[Create] = []
    drives: list[Drive] = []
    wake: list[datetime] = []
    for fact in facts:
        if not enabled(fact.kind, rules):
            continue
        if fact.held_back_until is not None and now < fact.held_back_until:
            wake.append(fact.held_back_until)
            continue
        if fact.unfinished is not None:
            drives.append(Drive(fact.kind, fact.unfinished))
            continue
        due = latest_due(fact.kind, rules, now)
        if due is not None and (fact.last_created_at is None or fact.last_created_at < due):
            creates.append(Create(fact.kind, pool_of(fact.kind, rules), due))
        else:
            wake.append(next_due(fact.kind, rules, now))
    if creates or drives:
        return (creates + drives)[0]
    return Sleep(min(wake) if wake else None)


def kind_facts(session: Session, rules: ScheduleRules, held_back: dict[str, datetime]) -> list[KindFacts]:
    """The facts of every kind's scheduled pool from the store (every tournament drawing from the pool
    counts, also one made with ``tournament create``), with this process's hold-backs."""
    facts = []
    for kind in TOURNAMENT_KINDS:
        query = (
            select(Tournament)
            .join(TournamentDraw, TournamentDraw.tournament_id == Tournament.id)
            .join(TaskPool, TaskPool.id == TournamentDraw.pool_id)
            .where(Tournament.kind == kind, TaskPool.name == pool_of(kind, rules))
            .order_by(Tournament.id)
        )
        tournaments = list(session.scalars(query))
        unfinished = [t.id for t in tournaments if t.status not in TournamentStatus.ENDED]  # a cancelled one is not driven on
        last = max((t.created_at for t in tournaments), default=None)
        facts.append(KindFacts(kind, unfinished[0] if unfinished else None, last, held_back.get(kind)))
    return facts
