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
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from trainarena.records.recorder import recorder_for
from trainarena.settings import Settings
from trainarena.store import StoreError, TournamentDraw, TournamentStatus, get_tournament
from trainarena.store.records import rules_of

# The most characters of a reason kept: it is shown in tables and one-line outcomes.
REASON_MAX = 300


class CancelRefused(StoreError):
    """A tournament that cannot be cancelled (finished, or cancelled already), with why."""


@dataclass(frozen=True)
class CancelledTournament:
    id: int
    name: str
    reason: str  # the outcome recorded: "cancelled: ..."
    released: bool  # its draw, entrants and defender were released (it had not started)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "status": TournamentStatus.CANCELLED, "reason": self.reason,
                "released": self.released}


def cancel_tournament(session: Session, settings: Settings, tournament_id: int, reason: str | None = None) -> CancelledTournament:
    """Cancel tournament ``tournament_id`` (flushed, not committed), signing its end when it started and
    records are on; StoreError when there is none, CancelRefused when it is finished or cancelled already."""
    tournament = get_tournament(session, tournament_id, lock=True)  # after a driver's write step under way, never amid it
    if tournament.status in TournamentStatus.ENDED:
        raise CancelRefused(f"tournament {tournament.name!r} is {tournament.status} ({tournament.outcome_reason}); "
                            "only a tournament not finished can be cancelled")
    said = " ".join((reason or "").split())[:REASON_MAX] or "by the operator"
    released = not tournament.rounds
    tournament.status = TournamentStatus.CANCELLED
    tournament.finished_at = datetime.now(UTC)
    tournament.outcome_reason = f"cancelled: {said}" + ("" if released else " (after it started: its records stay)")
    if released:
        draw = session.get(TournamentDraw, tournament_id)
        if draw is not None:
            session.delete(draw)
        tournament.entrants.clear()
        tournament.champion_before_id = None
    elif (recorder := recorder_for(settings)) is not None:
        recorder.tournament_cancelled(session, tournament, rules_of(tournament, settings.rules), said)
    session.flush()
    return CancelledTournament(tournament.id, tournament.name, tournament.outcome_reason, released)
