"""The weights history: publish a vector from the finished tournaments at a given time, read it back.

Publishing reads only stored results (each finished tournament's weight rows and remainder), so an
auditor can recompute every vector from the record. The session is injected; nothing is committed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from trainarena.engine.model import TOURNAMENT_KINDS
from trainarena.engine.published_weights import KindWeights, publish
from trainarena.settings import WeightRules
from trainarena.store.competitors import StoreError
from trainarena.store.models import Tournament, TournamentStatus, WeightRow, WeightVector, WeightVectorEntry


class FutureTimeError(StoreError):
    """A publishing time later than now by more than ``weights.publish_clock_skew_seconds``."""


def _check_not_future(at: datetime, rules: WeightRules, now: datetime | None) -> None:
    now = now or datetime.now(UTC)
    if at > now + timedelta(seconds=rules.publish_clock_skew_seconds):
        raise FutureTimeError(f"cannot publish at {at.isoformat()}: that is later than now ({now.isoformat(timespec='seconds')}) "
                              f"by more than {rules.publish_clock_skew_seconds:g} s (weights.publish_clock_skew_seconds); "
                              "a vector is published as of a time that has come")


def _history_error(at: datetime, previous: WeightVector, rules: WeightRules, now: datetime | None) -> StoreError:
    """Why ``at`` cannot follow ``previous``; for a vector dated in the future (stored before such times
    were refused) also how to get out: nothing can be published until its time."""
    said = (f"cannot publish at {at.isoformat()}: vector {previous.id} was published later, at "
            f"{previous.published_at.isoformat()}; the weights history only moves forward")
    try:
        _check_not_future(previous.published_at, rules, now)
    except FutureTimeError:
        return StoreError(f"{said}. Vector {previous.id} is dated in the future (a mistaken --at), so nothing can be "
                          f"published before then: back up the store, then delete weight_vector {previous.id} and its "
                          "weight_vector_entry rows (docs/rules.md, \"Published weights\")")
    return StoreError(said)


def latest_finished_tournament(session: Session, kind: str, at: datetime) -> Tournament | None:
    """The tournament of ``kind`` that finished last at or before ``at``."""
    query = (
        select(Tournament)
        .where(Tournament.kind == kind, Tournament.status == TournamentStatus.FINISHED, Tournament.finished_at <= at)
        .order_by(Tournament.finished_at.desc(), Tournament.id.desc())
    )
    return session.scalars(query).first()


def _kind_weights(session: Session, tournament: Tournament) -> tuple[KindWeights, dict[str, int]]:
    rows = list(session.scalars(select(WeightRow).where(WeightRow.tournament_id == tournament.id).order_by(WeightRow.id)))
    weights = {row.competitor.name: row.weight for row in rows}
    remainder = tournament.weight_remainder if tournament.weight_remainder is not None else 0.0
    return KindWeights(tournament.kind, tournament.id, weights, remainder), {row.competitor.name: row.competitor_id for row in rows}


def latest_vector(session: Session) -> WeightVector | None:
    return session.scalars(select(WeightVector).order_by(WeightVector.published_at.desc(), WeightVector.id.desc())).first()


def weight_history(session: Session) -> list[WeightVector]:
    """Every published vector, newest first."""
    return list(session.scalars(select(WeightVector).order_by(WeightVector.published_at.desc(), WeightVector.id.desc())))


def get_vector(session: Session, vector_id: int) -> WeightVector:
    vector = session.get(WeightVector, vector_id)
    if vector is None:
        raise StoreError(f"no published weight vector {vector_id}; see `trainarena weights show`")
    return vector


def publish_weights(session: Session, *, rules: WeightRules, at: datetime, now: datetime | None = None) -> tuple[WeightVector, bool]:
    """Store the vector of the latest finished text and image tournaments at ``at`` and return it with True;
    when the latest stored vector already has the same tournaments, ratio and week, return that one with False
    (publishing again after a restart stores nothing twice). FutureTimeError when ``at`` is later than
    ``now`` (the system clock when None; ``serve`` passes its own) by more than
    ``rules.publish_clock_skew_seconds``; StoreError when no tournament has finished by ``at``, or when
    ``at`` is before the latest stored vector (the history only moves forward)."""
    _check_not_future(at, rules, now)
    previous = latest_vector(session)
    if previous is not None and at < previous.published_at:
        raise _history_error(at, previous, rules, now)
    tournaments = [t for kind in TOURNAMENT_KINDS if (t := latest_finished_tournament(session, kind, at)) is not None]
    if not tournaments:
        raise StoreError(f"no tournament had finished by {at.isoformat()}; run one with `trainarena tournament run`")
    competitor_ids: dict[str, int] = {}
    results = []
    for tournament in tournaments:
        result, ids = _kind_weights(session, tournament)
        results.append(result)
        competitor_ids.update(ids)
    published = publish(results, at, rules)
    by_kind = {t.kind: t.id for t in tournaments}
    if previous is not None and (
        (previous.text_tournament_id, previous.image_tournament_id, previous.ratio, previous.week)
        == (by_kind.get("text"), by_kind.get("image"), published.ratio, published.week)
    ):
        return previous, False
    vector = WeightVector(
        published_at=at,
        ratio=published.ratio,
        week=published.week,
        undistributed=published.undistributed,
        fallback=published.fallback,
        text_tournament_id=by_kind.get("text"),
        image_tournament_id=by_kind.get("image"),
        entries=[
            WeightVectorEntry(competitor_id=competitor_ids[name], position=position, weight=weight)
            for position, (name, weight) in enumerate(published.weights)
        ],
    )
    session.add(vector)
    session.flush()
    return vector, True
