"""Repository functions for competitors: keyword-only arguments, the session injected, no commits
(the caller owns the transaction)."""

from __future__ import annotations

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from trainarena.store.models import (
    ChampionHistory,
    Competitor,
    MatchRow,
    Round,
    Run,
    RunOrigin,
    TaskRow,
    Tournament,
    TournamentEntrant,
    WeightRow,
    utcnow,
)

COMPETITOR_KINDS = ("text", "image", "both")


class StoreError(ValueError):
    """A store operation that breaks a rule of the record (duplicate name, unknown competitor)."""


class NotOwnCompetitor(StoreError):
    """A competitor key acting on a competitor another key (or the command line) registered."""


def add_competitor(
    session: Session,
    *,
    name: str,
    repo_url: str,
    commit: str,
    tree_hash: str,
    source_digest: str,
    entrypoint: str,
    kind: str | None = None,
    hotkey: str | None = None,
    similar_to: str | None = None,
    similarity: float | None = None,
    copy_flag: str | None = None,
    owner_key_id: int | None = None,
) -> Competitor:
    """Record a new competitor (flushed, not committed). Raises StoreError if the name is taken. ``hotkey``
    is stored as given: the caller checks its format (submissions.service does); so are the copy check's
    findings (``similar_to``, ``similarity``, ``copy_flag``: submissions.copies). ``owner_key_id``: the
    competitor key registering it, which may retire it (None: the command line or an operator's key)."""
    if kind is not None and kind not in COMPETITOR_KINDS:
        raise StoreError(f"competitor kind {kind!r} is not one of {COMPETITOR_KINDS} (or None for any)")
    if get_competitor(session, name) is not None:
        raise StoreError(f"a competitor named {name!r} is already registered; choose another name")
    competitor = Competitor(
        name=name,
        repo_url=repo_url,
        commit=commit,
        tree_hash=tree_hash,
        source_digest=source_digest,
        entrypoint=entrypoint,
        kind=kind,
        hotkey=hotkey,
        similar_to=similar_to,
        similarity=similarity,
        copy_flag=copy_flag,
        owner_key_id=owner_key_id,
    )
    session.add(competitor)
    session.flush()
    return competitor


def get_competitor(session: Session, name: str) -> Competitor | None:
    return session.scalar(select(Competitor).where(Competitor.name == name))


def require_competitor(session: Session, name: str) -> Competitor:
    """The competitor named ``name``; StoreError naming it if there is none."""
    competitor = get_competitor(session, name)
    if competitor is None:
        raise StoreError(f"no competitor named {name!r}; register it with `trainarena competitor add`")
    return competitor


def list_competitors(session: Session) -> list[Competitor]:
    """All competitors, oldest registration first."""
    return list(session.scalars(select(Competitor).order_by(Competitor.registered_at, Competitor.id)))


def retire_competitor(session: Session, *, name: str, owner: int | None, by_key_id: int | None) -> tuple[Competitor, bool]:
    """Retire the competitor ``name`` (flushed, not committed): it enters no tournament created from now
    on; those it entered go on, and its row and records stay. ``owner``: the competitor key acting, which
    must be the one that registered it (NotOwnCompetitor otherwise); None for an operator, who retires any.
    ``by_key_id``: the key recorded as retiring it (None: the command line). Returns the row and whether
    this call retired it: retiring a retired competitor changes nothing (False). StoreError when there is none."""
    competitor = get_competitor(session, name)
    if competitor is None:
        raise StoreError(f"no competitor named {name!r} to retire; see `trainarena competitor list`")
    if owner is not None and competitor.owner_key_id != owner:
        raise NotOwnCompetitor(f"competitor {name!r} was not registered with this key; only that key or an operator may retire it")
    if competitor.retired_at is not None:
        return competitor, False
    competitor.retired_at, competitor.retired_by_key_id = utcnow(), by_key_id
    session.flush()
    return competitor, True


def competitor_tournaments(session: Session, competitor: Competitor) -> list[str]:
    """Names of the tournaments that hold a record of ``competitor``: entered it, defended or won a title
    in it, ran it, weighted it or crowned it. Oldest first."""
    ids = (
        select(TournamentEntrant.tournament_id).where(TournamentEntrant.competitor_id == competitor.id)
        .union(
            select(Tournament.id).where(or_(Tournament.champion_before_id == competitor.id,
                                            Tournament.champion_after_id == competitor.id)),
            select(Round.tournament_id).join(MatchRow).join(TaskRow).join(Run).where(Run.competitor_id == competitor.id),
            select(WeightRow.tournament_id).where(WeightRow.competitor_id == competitor.id),
            select(ChampionHistory.tournament_id).where(ChampionHistory.competitor_id == competitor.id),
        )
        .subquery()
    )
    names = select(Tournament.name).where(Tournament.id.in_(select(ids.c[0]))).order_by(Tournament.created_at, Tournament.id)
    return list(session.scalars(names))


def remove_competitor(session: Session, *, name: str) -> Competitor:
    """Delete the competitor ``name`` (flushed, not committed) and return the deleted row. StoreError when
    there is none, or when a record keeps it: a tournament's (the record stays whole, so the competitor
    stays) or any other row that refers to it. Its ad-hoc runs (``trainarena run``) and audits of them
    stay, detached: each keeps the repository and commit it ran as its source."""
    competitor = get_competitor(session, name)
    if competitor is None:
        raise StoreError(f"no competitor named {name!r}; see `trainarena competitor list`")
    tournaments = competitor_tournaments(session, competitor)
    if tournaments:
        raise StoreError(
            f"competitor {name!r} cannot be removed: it is in the records of tournament(s) {', '.join(tournaments)}, "
            "whose records stay whole; retire it instead (`trainarena competitor retire`), so that no new tournament enters it"
        )
    _detach_adhoc_runs(session, competitor)
    try:
        with session.begin_nested():  # a row of another table that refers to it fails here, not at commit
            session.delete(competitor)
            session.flush()
    except IntegrityError as error:
        raise StoreError(f"competitor {name!r} cannot be removed: other records refer to it ({error.orig})") from None
    return competitor


def _detach_adhoc_runs(session: Session, competitor: Competitor) -> None:
    session.execute(
        update(Run)
        .where(Run.competitor_id == competitor.id, Run.origin.in_((RunOrigin.ADHOC, RunOrigin.AUDIT)))
        .values(competitor_id=None, source_path=competitor.repo_url, source_commit=competitor.commit, source_dirty=False)
    )


def competitors_at_commit(session: Session, commit: str) -> list[Competitor]:
    """Competitors registered at exactly this commit (they share one exported checkout)."""
    return list(session.scalars(select(Competitor).where(Competitor.commit == commit).order_by(Competitor.id)))
