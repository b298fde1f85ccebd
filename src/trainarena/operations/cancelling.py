"""Cancelling a tournament that is not finished (``trainarena tournament cancel``, ``POST
/v1/tournaments/{id}/cancel``): it ends as ``cancelled``, with the operator's reason as its outcome, and
is never driven again (a driver stops at its next step: ``orchestrator``, ``store.cancelled_problem``).

What it releases depends on what it played, so that the record stays true:

- Not started (no round created; nothing of it is in the transparency log): its task draw, its
  entrants and its defending champion are released, so the tasks return to their pool and the
  competitors can be removed. The tournament row stays, cancelled, with the reason.
- Started (a round was created, and the commitment signed): nothing is removed. Its signed statements
  stay as they are, its drawn tasks stay drawn and its entrants stay entered (their records name
  them); the cancellation is signed as its end (a ``cancellation`` statement in the transparency log,
  in the same transaction: when, why, the rounds played), so ``verify`` of its bundle says it was
  cancelled and why; the store says it too (``tournament show``, ``status``, the bundle's
  ``claims.json``). No decision is signed for it, and no reveal: its tasks' split seeds stay secret.
  A driver's runs in flight are stopped and withdrawn, and nothing of them is stored (``orchestrator``).

Its attempts still running are withdrawn (they cost the competitor no try) by whoever holds its lease:
a live driver withdraws its own once it finds the cancellation, and the cancel leaves them to it. When
none is alive (killed outright, or stopped by a signal with its withdrawal not stored: a note in the
tournament's work folder says so), nothing would drive the tournament again, so the cancel takes the
lease itself, as a takeover would, and withdraws them in its own transaction (honouring the notes:
``stopped_attempts``); once that is committed it removes the notes, the attempts' outputs and the
early runs' folders. Taking the lease first, then the tournament's row, is a write step's order, and
a driver whose lease had expired and that wakes afterwards finds it lost and stops.

A live driver may die after the cancel (killed outright) before it withdrew its attempts: they would
stay running for good. So a cancel of a tournament cancelled already settles them the same way when no
live driver holds it any more, and says how many (the tournament stays as the first cancel ended it:
its reason, its time, its signed end). It clears what such a driver left in the tournament's work
folder too (withdrawal notes, early runs' folders) even when no attempt is left to withdraw: a driver
killed after its withdrawal was stored, before it cleared them, leaves them, and no drive ever would.
Each cancel that no live driver holds says what it removed. With nothing left to settle or clear it is
refused, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from trainarena.early_runs import EarlyRuns
from trainarena.records.recorder import recorder_for
from trainarena.runs import tournament_dir
from trainarena.settings import Settings
from trainarena.stopped_attempts import WithdrawalNotes, clear_driverless, first_tries, withdraw_driverless
from trainarena.store import Store, StoreError, Tournament, TournamentDraw, TournamentStatus, get_tournament
from trainarena.store.leases import DriverIdentity, lease_holder, release, try_acquire
from trainarena.store.records import rules_of

# The most characters of a reason kept: it is shown in tables and one-line outcomes.
REASON_MAX = 300


class CancelRefused(StoreError):
    """A tournament that cannot be cancelled (finished, or cancelled already with nothing left to settle or clear), with why."""


@dataclass(frozen=True)
class CancelledTournament:
    id: int
    name: str
    reason: str  # the outcome recorded: "cancelled: ..."
    released: bool  # its draw, entrants and defender were released (it had not started)
    withdrawn: int  # attempts left running by a driver no longer alive, withdrawn by the cancel
    already_cancelled_at: datetime | None  # when an earlier cancel ended it: this one only settled what was left
    notes_removed: int  # withdrawal notes a stopped driver had left in its work folder, removed by the cancel
    early_runs_removed: int  # early runs' folders a driver no longer alive had left, removed by the cancel

    def to_json(self) -> dict[str, Any]:
        already = None if self.already_cancelled_at is None else self.already_cancelled_at.isoformat()
        return {"id": self.id, "name": self.name, "status": TournamentStatus.CANCELLED, "reason": self.reason,
                "released": self.released, "withdrawn": self.withdrawn, "already_cancelled_at": already,
                "notes_removed": self.notes_removed, "early_runs_removed": self.early_runs_removed}


def cancel_tournament(store: Store, settings: Settings, tournament_id: int, reason: str | None = None) -> CancelledTournament:
    """Cancel tournament ``tournament_id`` in one transaction, signing its end when it started and records
    are on, and withdrawing its attempts still running when no live driver holds it (then clearing its
    work folder's leftovers); cancelled already, only that withdrawal and clearing (``reason`` unused).
    StoreError when there is none, CancelRefused when it is finished, or cancelled already with no attempt
    left to withdraw nor leftover to clear (or a live driver to see to them)."""
    notes = WithdrawalNotes.read(tournament_dir(settings.work_dir, tournament_id))  # read whole before the withdrawal
    with store.transaction() as session:
        tournament = get_tournament(session, tournament_id)
        _refuse_finished(tournament)
        # The lease first, the tournament's row next: the order of a driver's write steps (``orchestrator``).
        me = DriverIdentity.of_this_process()
        holder = lease_holder(session, tournament_id)
        dead = holder.owner_id if holder is not None and holder.is_dead_local_process(me) else None
        live = try_acquire(session, tournament_id, me, settings.lease, take_from=dead)
        tournament = get_tournament(session, tournament_id, lock=True)  # after a driver's write step, never amid it
        _refuse_finished(tournament)
        already = tournament.finished_at if tournament.status == TournamentStatus.CANCELLED else None
        said = " ".join((reason or "").split())[:REASON_MAX] or "by the operator"
        released = _end(session, settings, tournament, said) if already is None else False
        withdrawn = [] if live else withdraw_driverless(session, tournament_id, notes, "its tournament was cancelled")
        tries = first_tries(session, settings.work_dir, tournament_id, withdrawn)
        # No live driver: nothing writes early/ now (a cancelled tournament is never driven again).
        early_runs = 0 if live else EarlyRuns(settings.work_dir).left_behind(tournament_id)
        notes_left = 0 if live else len(notes.paths)
        if already is not None and not (withdrawn or notes_left or early_runs):  # rolled back: the lease taken is given up with it
            raise CancelRefused(f"tournament {tournament.name!r} is cancelled already ({tournament.outcome_reason}); "
                                + (f"its driver ({live.describe()}) holds it and withdraws its runs; should that driver have died, "
                                   "cancel again once its lease expired" if live else "nothing is left to settle or clear"))
        if not live:
            release(session, tournament_id, me)
        cancelled = CancelledTournament(tournament.id, tournament.name, str(tournament.outcome_reason), released,
                                        len(withdrawn), already, notes_left, early_runs)  # fmt: skip
    if not live:  # a live driver clears its own
        clear_driverless(settings.work_dir, tournament_id, notes, withdrawn, tries)
    return cancelled


def _refuse_finished(tournament: Tournament) -> None:
    if tournament.status == TournamentStatus.FINISHED:
        raise CancelRefused(f"tournament {tournament.name!r} is {tournament.status} ({tournament.outcome_reason}); "
                            "only a tournament not finished can be cancelled")


def _end(session: Session, settings: Settings, tournament: Tournament, said: str) -> bool:
    """Record the cancellation, ``said`` its reason (flushed); True when it had not started and released
    its draw, entrants and defender."""
    released = not tournament.rounds
    tournament.status = TournamentStatus.CANCELLED
    tournament.finished_at = datetime.now(UTC)
    tournament.outcome_reason = f"cancelled: {said}" + ("" if released else " (after it started: its records stay)")
    if released:
        draw = session.get(TournamentDraw, tournament.id)
        if draw is not None:
            session.delete(draw)
        tournament.entrants.clear()
        tournament.champion_before_id = None
    elif (recorder := recorder_for(settings)) is not None:
        recorder.tournament_cancelled(session, tournament, rules_of(tournament, settings.rules), said)
    session.flush()
    return released
