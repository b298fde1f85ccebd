"""One driver per tournament: a lease row in the store, taken and renewed by atomic conditional writes.

A driver takes the lease of a tournament when no row exists, when the row's lease has expired (its
driver died without releasing it), when the row is its own, or when the holder is a process of this
host that no longer exists. Taking is one transaction of two statements, ``INSERT ... ON CONFLICT DO
NOTHING`` then ``UPDATE ... WHERE <one of those conditions>``: on PostgreSQL the UPDATE locks the row
and re-checks the condition after a concurrent taker commits; on SQLite the first write takes the
database's write lock until the commit. Either way exactly one taker wins.

The holder renews the lease from a heartbeat thread (:class:`LeaseKeeper`) and fences every write
step: :func:`fence` renews the lease *as the first statement of the step's transaction* and raises
:class:`LeaseLost` if the row is no longer its own, so a driver that lost its lease (paused past the
expiry, then taken over) cannot write once another driver has taken over. Times are the drivers'
clocks (UTC): drivers on several hosts need clocks that agree well within the lease duration.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from trainarena.settings import LeaseRules
from trainarena.store.competitors import StoreError
from trainarena.store.models import TournamentLease, database_now

# The two dialects with INSERT ... ON CONFLICT DO NOTHING, which taking a lease needs.
_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


@dataclass(frozen=True)
class DriverIdentity:
    """Who drives: a random owner id (a restarted process is a new owner), the host and the pid."""

    owner_id: str
    host: str
    pid: int

    @classmethod
    def of_this_process(cls) -> DriverIdentity:
        return cls(uuid.uuid4().hex, socket.gethostname(), os.getpid())


@dataclass(frozen=True)
class LeaseHolder:
    """The driver holding a tournament's lease, as read from the store."""

    owner_id: str
    host: str
    pid: int
    acquired_at: datetime
    heartbeat_at: datetime
    expires_at: datetime

    def describe(self) -> str:
        return (f"{self.host} pid {self.pid} since {self.acquired_at:%Y-%m-%d %H:%M:%S} UTC "
                f"(last heartbeat {self.heartbeat_at:%H:%M:%S}, expires {self.expires_at:%H:%M:%S} UTC)")

    def is_dead_local_process(self, me: DriverIdentity) -> bool:
        """True when the holder ran on this host and its process no longer exists (a Ctrl-C'd or
        killed driver): its lease need not be waited out."""
        return self.pid != me.pid and is_dead_local_process(self.host, self.pid, me.host)


def is_dead_local_process(host: str, pid: int, this_host: str | None = None) -> bool:
    """True when process ``pid`` of ``host`` ran on this host (``this_host``, by default the
    hostname) and no longer exists. A process of another host is never called dead, and a pid taken
    by another process since then looks alive: a live process is never taken for a dead one."""
    if host != (socket.gethostname() if this_host is None else this_host) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, under another user
        return False
    return False


class LeaseError(RuntimeError):
    """Another driver drives the tournament (or took it over from this one)."""

    def __init__(self, message: str, tournament_id: int, holder: LeaseHolder | None) -> None:
        super().__init__(message)
        self.tournament_id = tournament_id
        self.holder = holder


class LeaseHeld(LeaseError):
    """The lease is held by another live driver, and this one was told not to wait."""


class LeaseLost(LeaseError):
    """This driver's lease was taken over (it had expired): it must stop writing."""


def _holder(row: TournamentLease) -> LeaseHolder:
    return LeaseHolder(row.owner_id, row.host, row.pid, row.acquired_at, row.heartbeat_at, row.expires_at)


def lease_holder(session: Session, tournament_id: int) -> LeaseHolder | None:
    """Who holds the tournament's lease now (possibly expired), or None."""
    row = session.get(TournamentLease, tournament_id, populate_existing=True)
    return None if row is None else _holder(row)


def live_holder(session: Session, tournament_id: int) -> LeaseHolder | None:
    """Who holds the tournament's lease now, if it has not expired by the store's clock; else None."""
    holder = lease_holder(session, tournament_id)
    return holder if holder is not None and holder.expires_at > database_now(session) else None


def try_acquire(
    session: Session, tournament_id: int, me: DriverIdentity, rules: LeaseRules, *, take_from: str | None = None
) -> LeaseHolder | None:
    """Take the lease if it is free, expired, already ours, or held by the owner ``take_from`` (a
    holder found dead). Returns None when taken, else the live holder. Commit the session to keep it."""
    insert = _INSERTS.get(session.get_bind().dialect.name)
    if insert is None:
        raise StoreError(f"driver leases need SQLite or PostgreSQL, not {session.get_bind().dialect.name}")
    while True:
        now = database_now(session)  # one clock for drivers on hosts whose clocks disagree (PostgreSQL's)
        values = {"owner_id": me.owner_id, "host": me.host, "pid": me.pid, "acquired_at": now, "heartbeat_at": now,
                  "expires_at": now + timedelta(seconds=rules.lease_seconds)}
        session.execute(insert(TournamentLease).values(tournament_id=tournament_id, **values).on_conflict_do_nothing())
        takeable = [TournamentLease.owner_id == me.owner_id, TournamentLease.expires_at <= now]
        if take_from is not None:
            takeable.append(TournamentLease.owner_id == take_from)
        taken = session.execute(
            update(TournamentLease).where(TournamentLease.tournament_id == tournament_id, or_(*takeable)).values(**values)
        )
        if taken.rowcount == 1:
            return None
        holder = lease_holder(session, tournament_id)
        if holder is not None:
            return holder
        # On PostgreSQL (read committed) the holder's release can commit between our INSERT, which
        # saw its row, and our UPDATE, which no longer does: the lease is free now, so try again.


def renew(session: Session, tournament_id: int, me: DriverIdentity, rules: LeaseRules) -> bool:
    """Extend our lease; False when the row is no longer ours (taken over, or released)."""
    now = database_now(session)
    renewed = session.execute(
        update(TournamentLease)
        .where(TournamentLease.tournament_id == tournament_id, TournamentLease.owner_id == me.owner_id)
        .values(heartbeat_at=now, expires_at=now + timedelta(seconds=rules.lease_seconds))
    )
    return renewed.rowcount == 1


def fence(session: Session, tournament_id: int, me: DriverIdentity, rules: LeaseRules) -> None:
    """Run first in each write step's transaction: renews the lease (holding the row until the commit)
    or raises :class:`LeaseLost` naming the new holder."""
    if not renew(session, tournament_id, me, rules):
        holder = lease_holder(session, tournament_id)
        now_held = "nobody holds it now" if holder is None else f"now held by {holder.describe()}"
        raise LeaseLost(f"tournament {tournament_id}: this driver lost its lease ({now_held}); it stops here",
                        tournament_id, holder)


def release(session: Session, tournament_id: int, me: DriverIdentity) -> None:
    """Give the lease up (only if it is still ours)."""
    session.execute(
        delete(TournamentLease).where(TournamentLease.tournament_id == tournament_id, TournamentLease.owner_id == me.owner_id)
    )


class LeaseKeeper:
    """A daemon thread renewing a held lease every ``heartbeat_seconds``; it stops once a renewal finds the
    lease taken over, calling ``on_lost`` (the driver learns it from :func:`fence` before its next write
    too, but its runs would train on meanwhile, beside the new driver's). A renewal that fails (store
    busy) is retried at the next beat."""

    def __init__(self, renew_once: Callable[[], bool], heartbeat_seconds: float,
                 on_lost: Callable[[], None] = lambda: None) -> None:
        self._renew_once = renew_once
        self._on_lost = on_lost
        self._interval = heartbeat_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="trainarena-lease", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                if not self._renew_once():
                    self._on_lost()
                    return
            except SQLAlchemyError:  # a busy or unreachable store: the next beat tries again
                continue
