"""Lists of runs, as plain data read from the store: what ``trainarena runs list`` and ``GET /v1/runs``
render, in play order (tournament, round, match, task, run), paged by a keyset cursor that the store's
indexes serve (migration 0015), and the filters' checks. Nothing here prints."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, false, func, or_, select
from sqlalchemy.orm import Session, selectinload

from trainarena.contract import RunStatus
from trainarena.reporting.reasons import short_reason
from trainarena.reporting.references import REFERENCE_LABELS, TREE_SUFFIX, run_label
from trainarena.reporting.run_detail import drivers_of_running, place_of, score_of, task_direction, task_name
from trainarena.reporting.run_labels import has_labelled_runs, labelled_runs
from trainarena.runs import definition_from_json, task_key
from trainarena.store import (
    Competitor,
    MatchRow,
    Round,
    Run,
    StoredTask,
    TaskRow,
    Tournament,
    TournamentStatus,
    find_tournament,
    get_competitor,
    unknown_tournament,
)
from trainarena.store.driving import Driving
from trainarena.store.models import RunAttempt, RunOrigin
from trainarena.store.owned_lists import UnknownCursor
from trainarena.store.shown_status import CANCELLED, shown_outcome


@dataclass(frozen=True)
class RunSummary:
    """One run as a row of ``runs list``."""

    run_id: int
    origin: str
    audit_of: int | None  # an audit's run: the run it re-measures
    tournament: str | None
    round: int | None
    stage: str | None
    task: str
    task_digest: str | None
    competitor: str
    status: str
    attempts: int
    score: float | None
    direction: str | None  # lower or higher: which scores of its task type are better
    reason: str
    driver: Driving | None  # a running tournament run: who drives its tournament (RunDetail.driver)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["driver"] = None if self.driver is None else self.driver.to_json()
        return data


# ``runs list --tournament`` value that selects the runs played outside any tournament.
AD_HOC = "ad hoc"
# Values of the tournament filter that select some of the runs outside tournaments: what the list's
# tournament column says of them (``cli.runs.list_row``).
OUTSIDE_KINDS = {"reference": RunOrigin.REFERENCES, "audit": (RunOrigin.AUDIT,)}
# The shortest digest prefix ``runs list --task`` takes as one: shorter ones would match too many tasks by chance.
TASK_DIGEST_PREFIX_MIN = 6


def _summary(run: Run, drivers: dict[int, Driving]) -> RunSummary:
    score = score_of(run)[0]
    place = place_of(run)
    status, reason = shown_outcome(run)
    return RunSummary(
        run_id=run.id,
        origin=run.origin,
        audit_of=run.audit_of_id,
        tournament=place["tournament"],
        round=place["round"],
        stage=place["stage"],
        task=task_name(run.task),
        task_digest=run.task.digest,
        competitor=run_label(run),
        status=status,
        attempts=run.attempts,
        score=score,
        direction=task_direction(run.task),
        reason=short_reason(reason),
        driver=drivers.get(place["tournament_id"]) if run.status == RunStatus.RUNNING else None,
    )


# The order tournament runs are listed in (play order); ``Run.id`` last, so that no two runs tie and a
# cursor (``list_runs(after=...)``) names one place in it.
PLAY_ORDER = (Tournament.id, Round.index, MatchRow.position, TaskRow.index, Run.id)


def list_runs(
    session: Session,
    *,
    tournament: str | None = None,
    competitor: str | None = None,
    status: str | None = None,
    task: str | None = None,
    after: int | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> list[RunSummary]:
    """Tournament runs in play order (tournament, round, match, task, run id), then runs outside
    tournaments (ad hoc and references) by id, oldest first; of those, the ones after run ``after``
    when given (a keyset cursor: the last run a page answered), less the first ``offset``, at most
    ``limit`` (all when None). Filters: one tournament by name or id (or :data:`AD_HOC` for those outside),
    one competitor (by name), one status as a run reads (``ShownStatus``: as the store has it, but the
    runs not finished of a cancelled tournament read :data:`CANCELLED`), one task (its name or a
    digest prefix). Filters and the window are the database's: a page after a cursor costs about what the first page does, however
    deep (indexes serve play order, migration 0015); one at an offset grows with the runs it skips. An
    ``after`` that is no run of these lists is refused (UnknownCursor); a run the filters leave out
    still has its place in the order (a run's status changes while a client pages)."""
    outside: Select[tuple[Run]] | None = _outside_tournaments().order_by(Run.id)
    if tournament in OUTSIDE_KINDS:
        outside = outside.where(Run.origin.in_(OUTSIDE_KINDS[tournament]))
    played = select(Tournament.id).order_by(Tournament.id)
    stored = None if status is None else (status,)  # the stored statuses of the runs that read ``status``
    if status == CANCELLED:  # a cancelled tournament's runs not finished
        played, outside = played.where(Tournament.status == TournamentStatus.CANCELLED), None
        stored = (RunStatus.PENDING.value, RunStatus.RUNNING.value)
    elif status is not None and not RunStatus(status).finished:  # those read cancelled
        played = played.where(Tournament.status != TournamentStatus.CANCELLED)
    if tournament is not None and tournament not in (AD_HOC, *OUTSIDE_KINDS):
        named = find_tournament(session, tournament)
        played, outside = played.where(false() if named is None else Tournament.id == named.id), None
    tournaments = [] if tournament in (AD_HOC, *OUTSIDE_KINDS) else list(session.scalars(played))
    if after is None:
        queries = [_played_in(tournament_id) for tournament_id in tournaments] + ([] if outside is None else [outside])
    else:
        queries = _after_run(session, after, tournaments, outside)
    registered = competitor is not None and get_competitor(session, competitor) is not None
    ids: list[int] = []
    for number, query in enumerate(queries, start=1):
        if competitor is not None:
            query = query.join(Run.competitor).where(Competitor.name == competitor) if registered else query.where(labelled_runs(competitor))
        if stored is not None:
            query = query.where(Run.status.in_(stored))
        if task is not None:
            query = query.where(_is_task(task))
        if limit is not None and len(ids) >= limit:
            break
        window = query.with_only_columns(Run.id).offset(offset).limit(None if limit is None else limit - len(ids))
        found = list(session.scalars(window))
        ids += found
        if offset and not found and number < len(queries):  # the window starts past this query's runs: count them
            offset -= session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
        else:
            offset = 0
    runs = _loaded_runs(session, ids)
    drivers = drivers_of_running(session, runs)
    return [_summary(run, drivers) for run in runs]


def _with_tournament(query: Select[Any]) -> Select[Any]:
    """``query`` over runs joined to their task, match, round and tournament: tournament runs only."""
    return query.join_from(Run, TaskRow, Run.task).join(TaskRow.match).join(MatchRow.round).join(Round.tournament)


def _played_in(tournament_id: int) -> Select[tuple[Run]]:
    """One tournament's runs in play order. A query per tournament: with the tournament fixed the
    database walks the indexes in play order whatever it knows of the tables (SQLite, given every
    tournament at once and no statistics, reads and sorts every played run to answer a page)."""
    return _with_tournament(select(Run)).where(Tournament.id == tournament_id).order_by(*PLAY_ORDER)


def _after_run(session: Session, after: int, tournaments: list[int], outside: Select[tuple[Run]] | None) -> list[Select[tuple[Run]]]:
    """:func:`list_runs`'s queries over the runs that follow run ``after`` in its order, of the listed
    ``tournaments`` and the runs ``outside`` (None: not listed). After a tournament run: the runs past
    its place in its tournament, then those of later tournaments, then every run outside; after a run
    outside: the runs outside with a greater id."""
    run = session.get(Run, after)
    if run is None or run.origin in RunOrigin.PRIVATE:  # a customer's job run is no place in these lists
        raise UnknownCursor(str(after))
    place = session.execute(_with_tournament(select(*PLAY_ORDER)).where(Run.id == after)).first()
    if place is None:
        return [] if outside is None else [outside.where(Run.id > after)]
    queries = _past(_played_in(place[0]), tuple(place)) if place[0] in tournaments else []
    queries += [_played_in(tournament_id) for tournament_id in tournaments if tournament_id > place[0]]
    return queries + ([] if outside is None else [outside])


def _past(played: Select[tuple[Run]], place: tuple[Any, ...]) -> list[Select[tuple[Run]]]:
    """``played`` (one tournament's runs) narrowed to the runs past ``place`` in play order, one query
    per level, innermost first: the same task's later runs, the same match's later tasks, the same
    round's later matches, the later rounds. Listed in turn they are the runs past the place in order,
    and each starts at the place by an index (one row-value comparison across the five tables would
    make the database walk the tournament from its start to the place)."""
    levels = []
    for depth in reversed(range(1, len(PLAY_ORDER))):
        same = [column == value for column, value in zip(PLAY_ORDER[:depth], place[:depth], strict=True)]
        levels.append(played.where(*same, PLAY_ORDER[depth] > place[depth]))
    return levels


# Runs loaded by one query (and their relations by a few more): a bound parameter each.
_LOAD_BATCH = 500


def _loaded_runs(session: Session, ids: list[int]) -> list[Run]:
    """The runs of ``ids``, in that order, with what a summary reads: loaded once for the page, however
    many of :func:`list_runs`'s queries found them."""
    runs: dict[int, Run] = {}
    for start in range(0, len(ids), _LOAD_BATCH):
        batch = select(Run).where(Run.id.in_(ids[start:start + _LOAD_BATCH])).options(*_SUMMARY_LOADS)
        runs.update((run.id, run) for run in session.scalars(batch))
    return [runs[run_id] for run_id in ids]


# What a summary reads of each run, loaded for a whole page in a few queries rather than row by row.
_SUMMARY_LOADS = (
    selectinload(Run.task).selectinload(TaskRow.match).selectinload(MatchRow.round).selectinload(Round.tournament),
    selectinload(Run.competitor),
    selectinload(Run.attempt_records),
    selectinload(Run.counted_attempt).selectinload(RunAttempt.evaluation),
)


def _outside_tournaments() -> Select[tuple[Run]]:
    """Runs whose task belongs to no match: ad-hoc runs and references (customers' jobs are private)."""
    return select(Run).join(Run.task).where(TaskRow.match_row_id.is_(None), Run.origin.not_in(RunOrigin.PRIVATE))


def latest_runs_outside_tournaments(session: Session, count: int) -> list[RunSummary]:
    """The ``count`` newest runs outside tournaments (ad hoc and references), oldest of them first: the
    tail of ``list_runs(session, tournament=AD_HOC)`` without reading the rest."""
    newest = _outside_tournaments().order_by(Run.id.desc()).limit(count)
    return [_summary(run, {}) for run in reversed(list(session.scalars(newest)))]  # no tournament drives these


def _is_task(wanted: str) -> ColumnElement[bool]:
    """The task is ``wanted`` by name (as :func:`task_name` reads it) or by a digest prefix of
    :data:`TASK_DIGEST_PREFIX_MIN` or more characters."""
    name = TaskRow.definition["name"].as_string()
    matches = [name == wanted]
    if wanted.startswith("task") and wanted[4:].isdigit():  # task_name's fallback for an unnamed task
        matches.append(name.is_(None) & (TaskRow.id == int(wanted[4:])))
    if len(wanted) >= TASK_DIGEST_PREFIX_MIN:
        matches.append(TaskRow.digest.startswith(wanted, autoescape=True))
    return or_(false(), *matches)


@dataclass(frozen=True)
class UnknownFilter:
    """A filter of :func:`list_runs` that names nothing there: which one, its value, and a message that
    says what the filter takes."""

    field: str  # tournament | competitor | task
    value: str
    message: str


def run_filter_problem(session: Session, *, tournament: str | None, competitor: str | None, task: str | None = None,
                       operator: bool = False) -> UnknownFilter | None:  # fmt: skip
    """The first filter of :func:`list_runs` that names something that is not there, or None. A task
    is there when a tournament played it or a listed run was made on it, and for the ``operator``'s
    callers when a pool stores it: such a task with no runs yet lists no runs, rather than being
    unknown. A customer's job task is not there (its name is the customer's). A working tree's path on
    the server names a competitor for the operator only: to anyone else every path is unknown alike,
    whether runs were made from it or not, as their views name no path (``server_paths``)."""
    if tournament not in (None, AD_HOC, *OUTSIDE_KINDS) and find_tournament(session, tournament) is None:
        return UnknownFilter("tournament", tournament, f"{unknown_tournament(tournament)}; the "
                             f"tournament filter takes a tournament's name or its id, or {AD_HOC!r} for the runs outside "
                             "tournaments ('reference' for the references alone, 'audit' for the audits)")  # fmt: skip
    if competitor is not None and not _names_runs(session, competitor, operator=operator):
        return UnknownFilter("competitor", competitor, f"no competitor named {competitor!r}; the competitor filter "
                             f"takes a registered competitor's name, a working tree's as the list shows it ('NAME"
                             f"{TREE_SUFFIX}'){' or its path' if operator else ''}, "
                             f"{' or '.join(map(repr, REFERENCE_LABELS.values()))}")  # fmt: skip
    if task is not None and not _task_is_known(session, task, stored_tasks=operator):
        return UnknownFilter("task", task, f"no task named {task!r}; the task filter takes a task's name, or the "
                             f"first {TASK_DIGEST_PREFIX_MIN} or more characters of its digest")  # fmt: skip
    return None


def _names_runs(session: Session, competitor: str, *, operator: bool) -> bool:
    """Whether the competitor filter's ``competitor`` names a registered competitor or listed runs; a
    path (a working tree's, as the store keys its runs) only for the ``operator``."""
    if competitor.startswith("/") and not operator:
        return False
    return get_competitor(session, competitor) is not None or has_labelled_runs(session, competitor)


def _task_is_known(session: Session, task: str, *, stored_tasks: bool) -> bool:
    listed_run = select(Run.id).where(Run.task_id == TaskRow.id, Run.origin.not_in(RunOrigin.PRIVATE)).exists()
    played_or_listed = select(TaskRow.id).where(_is_task(task), TaskRow.match_row_id.is_not(None) | listed_run).limit(1)
    if session.scalar(played_or_listed) is not None:
        return True
    if not stored_tasks:
        return False
    if session.scalar(select(StoredTask.id).where(StoredTask.name == task)) is not None:
        return True
    # A stored task's digest is its definition's (not a column): few tasks are stored, and this runs only
    # for a task no run was made on.
    return len(task) >= TASK_DIGEST_PREFIX_MIN and any(
        task_key(definition_from_json(definition)).startswith(task) for definition in session.scalars(select(StoredTask.definition)))
