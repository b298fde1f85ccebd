"""Answers the API computes from records that no longer change, kept per process.

A finished tournament's records never change, yet its detail (bracket, standings, boss round) is
rebuilt from ~20 queries and a replay of the engine, and the champions' list replays every crowning
tournament: tens of milliseconds each, which 50 polling clients turn into seconds of queueing. Each
entry is stored with a *version* read cheaply from the store (one query), and recomputed when the
version differs: a tournament's detail is cached only once it has finished; the champions' list is
keyed by the newest crowning and the newest finished tournament.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from trainarena.store.models import ChampionHistory, Tournament, TournamentStatus

# Entries kept (least recently used dropped first): a few hundred tournament details, a few MB.
CACHE_ENTRIES = 256


class VersionedCache:
    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self._entries = entries
        self._values: OrderedDict[Hashable, tuple[Hashable, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, version: Hashable, compute: Callable[[], Any]) -> Any:
        """The value stored for ``key`` at ``version``, else ``compute()`` stored at it. Two threads
        missing at once both compute (the same value): no lock is held while computing."""
        with self._lock:
            found = self._values.get(key)
            if found is not None and found[0] == version:
                self._values.move_to_end(key)
                return found[1]
        value = compute()
        with self._lock:
            self._values[key] = (version, value)
            self._values.move_to_end(key)
            while len(self._values) > self._entries:
                self._values.popitem(last=False)
        return value


def tournament_version(session: Session, tournament_id: int) -> Hashable | None:
    """A finished tournament's version (its finish time), or None: not finished (or absent), not cacheable."""
    row = session.execute(select(Tournament.status, Tournament.finished_at).where(Tournament.id == tournament_id)).first()
    return row.finished_at if row is not None and row.status == TournamentStatus.FINISHED else None


def champions_version(session: Session) -> Hashable:
    """What the champions' list depends on: the newest crowning and the newest finished tournament."""
    newest_tournament = select(func.max(Tournament.id)).where(Tournament.status == TournamentStatus.FINISHED).scalar_subquery()
    return tuple(session.execute(select(func.max(ChampionHistory.id), newest_tournament)).one())
