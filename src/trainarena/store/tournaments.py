"""Repository functions for tournaments and what they hold (session injected, no commits)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session, selectinload

from trainarena.contract import STORE_INT_MAX, RunStatus, stored_name_problem
from trainarena.engine.model import TOURNAMENT_KINDS
from trainarena.store.competitors import StoreError, require_competitor
from trainarena.store.driving import Driving, drivers_of
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


def defender_reigned(session: Session, tournament: Tournament) -> bool:
    """Whether ``tournament``'s defender was the reigning champion of its kind (the latest crowning
    before it was created). False when nobody defends, and for a defender it was given without a reign
    (the demo's house default, ``create_tournament(champion=...)``): such a defender holds no title to keep."""
    if tournament.champion_before_id is None:
        return False
    latest = session.scalar(
        select(ChampionHistory)
        .where(ChampionHistory.kind == tournament.kind, ChampionHistory.crowned_at <= tournament.created_at)
        .order_by(ChampionHistory.crowned_at.desc(), ChampionHistory.id.desc())
        .limit(1)
    )
    return latest is not None and latest.competitor_id == tournament.champion_before_id


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
    if (problem := stored_name_problem("tournament", name)) is not None:
        raise StoreError(problem)
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


class TournamentCancelled(StoreError):
    """A tournament cancelled by the operator: a driver stops (its heartbeat or next write step finds it), naming why."""


def cancelled_problem(tournament: Tournament) -> TournamentCancelled | None:
    """The refusal to drive ``tournament`` when it was cancelled, else None."""
    if tournament.status != TournamentStatus.CANCELLED:
        return None
    # The outcome reads "cancelled: WHY ...": said once ("was cancelled (cancelled: WHY ...)" said it twice).
    why = (tournament.outcome_reason or "").removeprefix("cancelled: ")
    return TournamentCancelled(f"tournament {tournament.name!r} was cancelled{': ' + why if why else ''}; "
                               "nothing more of it is played")


def get_tournament(session: Session, tournament_id: int, *, lock: bool = False) -> Tournament:
    """The tournament; with ``lock``, its row is held until the transaction ends and read as it is then,
    so a cancellation and a driver's write step happen one after the other, never interleaved: SELECT
    ... FOR UPDATE on PostgreSQL. SQLite has no row locks: there the transaction takes the database's
    write lock first (an UPDATE of the row that changes nothing, nor a key), since pysqlite begins a
    transaction at its first write only, and a read before it sees the database as it was before a
    write step under way, which it would then overwrite."""
    if lock and session.get_bind().dialect.name == "sqlite":
        session.execute(update(Tournament.__table__).where(Tournament.id == tournament_id).values(status=Tournament.status))
    tournament = session.get(Tournament, tournament_id, with_for_update=lock, populate_existing=lock)
    if tournament is None:
        raise StoreError(f"no tournament with id {tournament_id}")
    return tournament


def get_tournament_by_name(session: Session, name: str) -> Tournament | None:
    return session.scalar(select(Tournament).where(Tournament.name == name))


def find_tournament(session: Session, name_or_id: str) -> Tournament | None:
    """The tournament a caller names by its name (what lists print first) or its id, or None: every
    command and filter that takes a tournament resolves it here. A name wins: names may be digits (a
    tournament named "7" is found by "7" before tournament 7, which its other name still finds), and a
    filter that took names before keeps meaning what it did."""
    if (named := get_tournament_by_name(session, name_or_id)) is not None:
        return named
    spelled = id_spelled_by(name_or_id)
    return None if spelled is None else session.get(Tournament, spelled)


def id_spelled_by(text: str) -> int | None:
    """The store id ``text`` spells (ASCII digits, 1 to STORE_INT_MAX), or None: a larger number is no
    id (PostgreSQL refuses it as a parameter of its 32-bit ids) though it may be a name."""
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(STORE_INT_MAX)):
        return None
    return int(text) if 1 <= int(text) <= STORE_INT_MAX else None


def unknown_tournament(name_or_id: str) -> str:
    """The refusal of a tournament that ``name_or_id`` names by neither form, one wording everywhere."""
    return f"no tournament has the name or id {name_or_id!r}"


def list_tournaments(session: Session, *, offset: int = 0, limit: int | None = None) -> list[Tournament]:
    """The tournaments, oldest first: all of them, or ``limit`` after the first ``offset``."""
    query = select(Tournament).order_by(Tournament.created_at, Tournament.id).offset(offset or None)
    return list(session.scalars(query if limit is None else query.limit(limit)))


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
    # A running tournament: who drives it; not alive, none does and its runs marked running are not
    # training (``store.driving``). None for every other tournament.
    driver: Driving | None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        data["finished_at"] = None if self.finished_at is None else self.finished_at.isoformat()
        data["driver"] = None if self.driver is None else self.driver.to_json()
        return data


def summarize_tournament(session: Session, tournament: Tournament) -> TournamentSummary:
    return summarize_tournaments(session, [tournament])[0]


def summarize_tournaments(session: Session, tournaments: Sequence[Tournament]) -> list[TournamentSummary]:
    """Where each of ``tournaments`` stands, in their order. A fixed number of queries, each grouped by
    tournament, whatever the number of tournaments: a list of them costs one pass over their runs, not
    a round of queries per tournament."""
    ids = [tournament.id for tournament in tournaments]
    if not ids:
        return []
    finished = case((Run.status.in_(FINISHED_RUN_STATUSES), 1), else_=0)
    runs = {tournament_id: (total, done or 0) for tournament_id, total, done in session.execute(
        select(Round.tournament_id, func.count(Run.id), func.sum(finished))
        .join(Run.task).join(TaskRow.match).join(MatchRow.round)
        .where(Round.tournament_id.in_(ids)).group_by(Round.tournament_id))}  # fmt: skip
    last = (select(Round.tournament_id, func.max(Round.index).label("index"))
            .where(Round.tournament_id.in_(ids)).group_by(Round.tournament_id).subquery())  # fmt: skip
    latest = {tournament_id: (index, stage) for tournament_id, index, stage in session.execute(
        select(Round.tournament_id, Round.index, Round.stage)
        .join(last, (Round.tournament_id == last.c.tournament_id) & (Round.index == last.c.index)))}  # fmt: skip
    entrants = {tournament_id: count for tournament_id, count in session.execute(
        select(TournamentEntrant.tournament_id, func.count(TournamentEntrant.id))
        .where(TournamentEntrant.tournament_id.in_(ids)).group_by(TournamentEntrant.tournament_id))}  # fmt: skip
    champion_ids = {c for t in tournaments for c in (t.champion_before_id, t.champion_after_id) if c is not None}
    names = {competitor_id: name for competitor_id, name in session.execute(
        select(Competitor.id, Competitor.name).where(Competitor.id.in_(champion_ids)))}  # fmt: skip
    drivers = drivers_of(session, tournaments)
    summaries = []
    for tournament in tournaments:
        total, done = runs.get(tournament.id, (0, 0))
        index, stage = latest.get(tournament.id, (None, None))
        summaries.append(TournamentSummary(
            id=tournament.id,
            name=tournament.name,
            kind=tournament.kind,
            status=tournament.status,
            seed=tournament.seed,
            entrants=entrants.get(tournament.id, 0),
            round_index=index,
            stage=stage,
            runs_done=done,
            runs_total=total,
            champion_before=names.get(tournament.champion_before_id),
            champion_after=names.get(tournament.champion_after_id),
            reason=tournament.outcome_reason,
            created_at=tournament.created_at,
            finished_at=tournament.finished_at,
            driver=drivers.get(tournament.id),
        ))  # fmt: skip
    return summaries


def is_finished(tournament: Tournament) -> bool:
    return tournament.status == TournamentStatus.FINISHED
