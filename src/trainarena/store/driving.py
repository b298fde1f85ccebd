"""Who drives a running tournament, as `status` and `tournament show` say it: the live driver holding
its lease (host, pid), or none since when (a driver that stopped, was killed or released its lease:
``trainarena tournament run ID`` resumes it). Likewise for a cancelled tournament with runs still
marked running: a live driver withdrawing them, or none (killed before it withdrew them: ``trainarena
tournament cancel ID`` again withdraws them, ``operations/cancelling``). Judged as a takeover judges
it (``store/leases.py``): a lease expired by the store's clock, or held by a process of this host
that no longer exists, holds nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from trainarena.contract import RunStatus
from trainarena.store.leases import is_dead_local_process
from trainarena.store.models import (
    MatchRow,
    Round,
    Run,
    RunAttempt,
    TaskRow,
    Tournament,
    TournamentLease,
    TournamentStatus,
    database_now,
)


@dataclass(frozen=True)
class Driving:
    """A running tournament's driver: ``alive`` with its ``host`` and ``pid``; else the last one's (None
    when its lease was released) and ``since`` when none drives it (its last heartbeat, or its runs'
    last start or end; None when nothing was ever driven)."""

    tournament_id: int
    alive: bool
    host: str | None
    pid: int | None
    since: datetime | None
    cancelled: bool = False  # its tournament is cancelled, with runs still marked running
    # Whether any of its runs is marked running: with none (its runs only pending), nothing claims to train.
    runs_marked_running: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"alive": self.alive, "host": self.host, "pid": self.pid,
                "since": None if self.since is None else self.since.isoformat()}

    def describe(self, *, where: bool = True) -> str:
        """What drives it; not ``where`` (for those who are not operators), without the driver's host and pid."""
        if self.alive:
            driver = f"{self.host} pid {self.pid}" if where else "a live driver"
            return f"driven by {driver}" + (", withdrawing its runs (cancelled)" if self.cancelled else "")
        return f"stopped: no driver{self._since()}; {self._resume()}"

    def idle_note(self) -> str:
        """Why a run of the tournament still marked running is not training while none drives it: its
        status stays running until the next drive runs it again (``attempts.recover_interrupted``)."""
        return f"no driver{self._since()} (its driver stopped or was killed); {self._resume()}"

    def _since(self) -> str:
        return "" if self.since is None else f" since {self.since:%Y-%m-%d %H:%M:%S} UTC"

    def _resume(self) -> str:
        if self.cancelled:  # nothing drives it again: its runs left running are withdrawn by a cancel
            return f"`trainarena tournament cancel {self.tournament_id}` withdraws its runs left running"
        return f"`trainarena tournament run {self.tournament_id}` resumes it"


def drivers_of(session: Session, tournaments: Sequence[Tournament]) -> dict[int, Driving]:
    """The driving of each running (not finished) tournament of ``tournaments``, and of each cancelled
    one with runs still marked running, by id."""
    candidates = [t.id for t in tournaments if t.status in (TournamentStatus.RUNNING, TournamentStatus.CANCELLED)]
    if not candidates:
        return {}
    marked_running = set(session.scalars(
        select(Round.tournament_id).distinct().select_from(Run).join(Run.task).join(TaskRow.match).join(MatchRow.round)
        .where(Round.tournament_id.in_(candidates), Run.status == RunStatus.RUNNING)))  # fmt: skip
    cancelled = [t.id for t in tournaments if t.status == TournamentStatus.CANCELLED and t.id in marked_running]
    ids = [t.id for t in tournaments if t.status == TournamentStatus.RUNNING] + cancelled
    if not ids:
        return {}
    now = database_now(session)
    leases = {row.tournament_id: row for row in session.scalars(select(TournamentLease).where(TournamentLease.tournament_id.in_(ids)))}
    last = dict(session.execute(  # the last start or end of one of its attempts
        select(Round.tournament_id, func.max(func.coalesce(RunAttempt.finished_at, RunAttempt.started_at)))
        .join(RunAttempt.run).join(Run.task).join(TaskRow.match).join(MatchRow.round)
        .where(Round.tournament_id.in_(ids)).group_by(Round.tournament_id)).all())  # fmt: skip
    driving = {}
    for tournament_id in ids:
        lease = leases.get(tournament_id)
        if lease is None:
            driving[tournament_id] = Driving(tournament_id, False, None, None, last.get(tournament_id), tournament_id in cancelled,
                                             tournament_id in marked_running)  # fmt: skip
            continue
        alive = lease.expires_at > now and not is_dead_local_process(lease.host, lease.pid)
        driving[tournament_id] = Driving(tournament_id, alive, lease.host, lease.pid, None if alive else lease.heartbeat_at,
                                         tournament_id in cancelled, tournament_id in marked_running)  # fmt: skip
    return driving

