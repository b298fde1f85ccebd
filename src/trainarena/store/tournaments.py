"""Repository functions for tournaments and what they hold (session injected, no commits)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from trainarena.contract import RunStatus
from trainarena.engine.model import TOURNAMENT_KINDS
from trainarena.store.competitors import StoreError, require_competitor
from trainarena.store.models import (
    ChampionHistory,
    Competitor,
    MatchRow,
    Round,
    Run,
    RunAttempt,
    TaskRow,
    Tournament,
    TournamentEntrant,
    TournamentStatus,
    WeightRow,
)

FINISHED_RUN_STATUSES = tuple(status.value for status in RunStatus if status.finished)


def current_champion(session: Session, kind: str) -> Competitor | None:
    """The reigning champion of ``kind``: the latest crowning in the champion history."""
    latest = session.scalar(
        select(ChampionHistory)
        .where(ChampionHistory.kind == kind)
        .order_by(ChampionHistory.crowned_at.desc(), ChampionHistory.id.desc())
        .limit(1)
    )
    return None if latest is None else latest.competitor


def _check_entrant_kind(competitor: Competitor, kind: str) -> None:
    if competitor.kind not in (None, "both", kind):
        raise StoreError(f"competitor {competitor.name!r} is registered for {competitor.kind} tasks, not {kind}")


def create_tournament(
    session: Session,
    *,
    name: str,
    kind: str,
    seed: int,
    entrants: list[str],
    champion: str | None = None,
) -> Tournament:
    """Record a new tournament (flushed, not committed).

    ``champion`` names the defending champion of the boss round; None takes the reigning champion of
    ``kind`` from the champion history (a first tournament has none). Entrants keep their order.
    """
    if kind not in TOURNAMENT_KINDS:
        raise StoreError(f"tournament kind {kind!r} is not one of {TOURNAMENT_KINDS}")
    if len(set(entrants)) != len(entrants):
        raise StoreError(f"entrants must be unique, got {entrants}")
    if session.scalar(select(Tournament).where(Tournament.name == name)) is not None:
        raise StoreError(f"a tournament named {name!r} already exists; choose another name")
    rows = [require_competitor(session, entrant) for entrant in entrants]
    for row in rows:
        _check_entrant_kind(row, kind)
    defender = require_competitor(session, champion) if champion is not None else current_champion(session, kind)
    tournament = Tournament(name=name, kind=kind, seed=seed, champion_before=defender)
    tournament.entrants = [TournamentEntrant(competitor=row, position=i) for i, row in enumerate(rows)]
    session.add(tournament)
    session.flush()
    return tournament


def get_tournament(session: Session, tournament_id: int) -> Tournament:
    tournament = session.get(Tournament, tournament_id)
    if tournament is None:
        raise StoreError(f"no tournament with id {tournament_id}")
    return tournament


def get_tournament_by_name(session: Session, name: str) -> Tournament | None:
    return session.scalar(select(Tournament).where(Tournament.name == name))


def list_tournaments(session: Session) -> list[Tournament]:
    """All tournaments, oldest first."""
    return list(session.scalars(select(Tournament).order_by(Tournament.created_at, Tournament.id)))


def tournament_runs(session: Session, tournament_id: int) -> list[Run]:
    """Every run of a tournament in play order (round, match, task, then competitor order of creation),
    with its attempts and counted evaluation loaded (readable after the session closes)."""
    return list(
        session.scalars(
            select(Run)
            .options(
                selectinload(Run.attempt_records).selectinload(RunAttempt.evaluation),
                selectinload(Run.counted_attempt),
            )
            .join(Run.task)
            .join(TaskRow.match)
            .join(MatchRow.round)
            .where(Round.tournament_id == tournament_id)
            .order_by(Round.index, MatchRow.position, TaskRow.index, Run.id)
        )
    )


def stored_weights(session: Session, tournament_id: int) -> dict[str, float]:
    """The weights stored for a finished tournament, by competitor name."""
    rows = session.scalars(select(WeightRow).where(WeightRow.tournament_id == tournament_id).order_by(WeightRow.id))
    return {row.competitor.name: row.weight for row in rows}


def champion_history(session: Session, kind: str | None = None) -> list[ChampionHistory]:
    query = select(ChampionHistory).order_by(ChampionHistory.crowned_at, ChampionHistory.id)
    if kind is not None:
        query = query.where(ChampionHistory.kind == kind)
    return list(session.scalars(query))


@dataclass(frozen=True)
class TournamentSummary:
    """Where a tournament stands, for ``trainarena status`` and dashboards."""

    id: int
    name: str
    kind: str
    status: str
    seed: int
    entrants: int
    round_index: int | None  # the latest round created, None before the first
    stage: str | None
    runs_done: int
    runs_total: int
    champion_before: str | None
    champion_after: str | None
    reason: str | None
    created_at: datetime
    finished_at: datetime | None


def summarize_tournament(session: Session, tournament: Tournament) -> TournamentSummary:
    latest = session.scalar(
        select(Round).where(Round.tournament_id == tournament.id).order_by(Round.index.desc()).limit(1)
    )
    counts = (
        select(func.count(Run.id))
        .join(Run.task)
        .join(TaskRow.match)
        .join(MatchRow.round)
        .where(Round.tournament_id == tournament.id)
    )
    total = session.scalar(counts) or 0
    done = session.scalar(counts.where(Run.status.in_(FINISHED_RUN_STATUSES))) or 0
    return TournamentSummary(
        id=tournament.id,
        name=tournament.name,
        kind=tournament.kind,
        status=tournament.status,
        seed=tournament.seed,
        entrants=len(tournament.entrants),
        round_index=None if latest is None else latest.index,
        stage=None if latest is None else latest.stage,
        runs_done=done,
        runs_total=total,
        champion_before=None if tournament.champion_before is None else tournament.champion_before.name,
        champion_after=None if tournament.champion_after is None else tournament.champion_after.name,
        reason=tournament.outcome_reason,
        created_at=tournament.created_at,
        finished_at=tournament.finished_at,
    )


def is_finished(tournament: Tournament) -> bool:
    return tournament.status == TournamentStatus.FINISHED
