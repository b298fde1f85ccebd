"""One run in full, and lists of runs, as plain data read from the store: what ``trainarena runs show``
and ``runs list`` render (and the leaderboard's reasons come from). Nothing here prints.

A failure reason as the sandbox records it is a summary line, then ``--- stderr tail ---`` and the
last lines of the script's stderr. Tables show :func:`short_reason` (one line); the details keep both.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Select, false, func, or_, select
from sqlalchemy.orm import Session, selectinload

from trainarena.reporting.references import REFERENCE_LABELS, TREE_SUFFIX, ReferenceLine, reference_lines, run_label
from trainarena.reporting.run_labels import has_labelled_runs, labelled_runs
from trainarena.runs import definition_from_json, task_key
from trainarena.store import (
    Competitor,
    MatchRow,
    Round,
    Run,
    Store,
    StoredTask,
    TaskRow,
    Tournament,
    get_competitor,
    get_tournament_by_name,
)
from trainarena.store.models import RunAttempt, RunOrigin
from trainarena.store.owned_lists import UnknownCursor

# How execution/supervise.py joins a crash's summary and its log tail in the recorded reason.
STDERR_TAIL_MARKER = "--- stderr tail ---"
STDERR_LOG_NAME = "stderr.log"  # the script's stderr, in the run's log folder
LOG_NAMES = {"stderr": STDERR_LOG_NAME, "stdout": "stdout.log"}  # the logs the platform writes per run
RESULT_FILE_NAME = "result.json"  # in each run's folder: what `runs show --json` prints
RESULT_TAIL_LINES = 20  # stderr lines in result.json, and what `runs show` prints unless told otherwise


class UnknownRunError(LookupError):
    """No run has the id asked for."""


class UnknownLogError(LookupError):
    """A run without the log asked for (not started yet, or its folder was cleaned up)."""


def split_reason(text: str | None) -> tuple[str, str | None]:
    """(the platform's summary, the recorded stderr tail or None) of a failure reason."""
    if not text:
        return "", None
    summary, marker, tail = text.strip().partition(STDERR_TAIL_MARKER)
    return summary.strip(), (tail.strip("\n") or None) if marker else None


def short_reason(text: str | None) -> str:
    """A one-line reason: the summary's first line, plus the last line of the stderr tail (usually the
    exception) unless the run was stopped at its budget (then the tail is just its last progress)."""
    summary, tail = split_reason(text)
    reason = summary.splitlines()[0] if summary else ""
    tail_lines = [line.strip() for line in (tail or "").splitlines() if line.strip()]
    if tail_lines and not reason.startswith("still running"):
        reason = f"{reason} {tail_lines[-1]}".strip()
    return reason


@dataclass(frozen=True)
class AttemptLine:
    """One try of a run, as ``runs show`` lists them: the interrupted ones stay on record."""

    number: int
    status: str
    counts: bool  # the attempt whose outcome is the run's
    driver: str  # host:pid of the driver process that executed it ("-" when not recorded)
    started_at: datetime | None
    wall_seconds: float | None
    score: float | None
    reason: str  # one line

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = None if self.started_at is None else self.started_at.isoformat()
        return data


def attempt_lines(run: Run) -> tuple[AttemptLine, ...]:
    """Every attempt of ``run``, oldest first."""
    lines = []
    for attempt in sorted(run.attempt_records, key=lambda a: a.number):
        driver = "-" if attempt.driver_host is None else f"{attempt.driver_host}:{attempt.driver_pid}"
        score = None if attempt.evaluation is None else attempt.evaluation.score
        lines.append(AttemptLine(
            number=attempt.number, status=attempt.status, counts=attempt.id == run.counted_attempt_id, driver=driver,
            started_at=attempt.started_at, wall_seconds=attempt.wall_seconds, score=score,
            reason=short_reason(attempt.failure_reason),
        ))
    return tuple(lines)


def score_of(run: Run) -> tuple[float | None, str | None]:
    """(score, direction) of the attempt that counts; (None, None) while none was scored. Every other
    outcome field (status, times, files, reason) ``Run`` itself reads from that attempt."""
    evaluation = run.evaluation
    return (None, None) if evaluation is None else (evaluation.score, evaluation.direction)


def task_name(task: TaskRow) -> str:
    return str(task.definition.get("name", f"task{task.id}"))


@dataclass(frozen=True)
class RunDetail:
    """Everything about one run: where it was played (a tournament's round and match, or ad hoc), by
    whom (a registered competitor, a working tree, or a reference), how it ended and where its files are."""

    run_id: int
    origin: str  # tournament | adhoc | audit | house | base_model (| job, for the operator)
    audit_of: int | None  # an audit's run: the run it re-measures
    tournament_id: int | None
    tournament: str | None
    round: int | None  # 1-based, as the bracket shows it
    stage: str | None
    match_id: str | None
    task: str
    task_digest: str | None  # runs.task_key: equal digests, comparable scores
    task_type: str
    base_model: str
    budget_seconds: float | None
    seed: int | None
    competitor: str  # the competitor's name, a working tree's folder name, or the reference's name
    repo_url: str | None  # a competitor's repository, or a working tree's path
    commit: str | None
    dirty: bool | None  # a working tree with uncommitted changes
    snapshot_path: str | None  # the copy of a working tree the sandbox ran
    status: str
    attempts: int
    score: float | None
    direction: str | None
    references: tuple[ReferenceLine, ...]
    reason: str  # one line, as tables show it
    summary: str  # the platform's full summary of a failure
    failure_reason: str | None  # the whole recorded text (summary and stderr tail)
    stderr_tail: str | None
    stderr_tail_from: str | None  # the stderr log file the tail was read from, or "recorded with the failure reason"
    log_path: str | None
    artifact_path: str | None
    artifact_digest: str | None
    started_at: datetime | None
    finished_at: datetime | None
    wall_seconds: float | None
    attempt_history: tuple[AttemptLine, ...]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("started_at", "finished_at"):
            data[key] = None if data[key] is None else data[key].isoformat()
        data["attempt_history"] = [line.to_json() for line in self.attempt_history]
        data["references"] = [line.to_json() for line in self.references]
        return data


def _stderr_tail(log_path: str | None, recorded: str | None, lines: int) -> tuple[str | None, str | None]:
    """(the last ``lines`` lines of the run's stderr log, the log's path) while the log is there and not
    empty, else the tail recorded with the failure reason; nothing when ``lines`` is 0."""
    if lines <= 0:
        return None, None
    stderr_log = None if log_path is None else Path(log_path) / STDERR_LOG_NAME
    if stderr_log is not None and stderr_log.is_file():
        with stderr_log.open(encoding="utf-8", errors="replace") as handle:
            tail = "".join(deque(handle, maxlen=lines)).rstrip("\n")
        if tail:
            return tail, str(stderr_log)
    if recorded is None:
        return None, None
    return "\n".join(recorded.splitlines()[-lines:]), "recorded with the failure reason"


def _place(run: Run) -> dict[str, Any]:
    """Where a run was played: its tournament, round and match, or nothing for an ad-hoc run."""
    match = run.task.match
    if match is None:
        return dict(tournament_id=None, tournament=None, round=None, stage=None, match_id=None)
    round_row = match.round
    return dict(tournament_id=round_row.tournament.id, tournament=round_row.tournament.name, round=round_row.index + 1,
                stage=round_row.stage, match_id=match.match_id)  # fmt: skip


def _source(run: Run) -> dict[str, Any]:
    """What ran: a registered competitor's repository and commit, or a working tree's path and state."""
    if run.competitor is not None:
        return dict(repo_url=run.competitor.repo_url, commit=run.competitor.commit, dirty=None, snapshot_path=None)
    return dict(repo_url=run.source_path, commit=run.source_commit, dirty=run.source_dirty, snapshot_path=run.snapshot_path)


def visible_run(session: Session, run_id: int, *, private: bool = False) -> Run:
    """Run ``run_id``, or UnknownRunError; a customer's job run (``RunOrigin.PRIVATE``) only when
    ``private`` (the operator's CLI, the job's own records), as if it did not exist otherwise."""
    run = session.get(Run, run_id)
    if run is None or (run.origin in RunOrigin.PRIVATE and not private):
        raise UnknownRunError(f"no run with id {run_id}")
    return run


def read_run_detail(session: Session, run_id: int, *, tail_lines: int, private: bool = False) -> RunDetail:
    """Run ``run_id`` in full, with the last ``tail_lines`` lines of its stderr (see ``_stderr_tail``);
    ``private``: see :func:`visible_run`."""
    run = visible_run(session, run_id, private=private)
    score, direction = score_of(run)
    task = run.task
    summary, recorded_tail = split_reason(run.failure_reason)
    tail, tail_from = _stderr_tail(run.log_path, recorded_tail, tail_lines)
    budget, seed = task.definition.get("budget_seconds"), task.definition.get("seed")
    is_reference = run.origin in RunOrigin.REFERENCES
    return RunDetail(
        run_id=run.id,
        origin=run.origin,
        audit_of=run.audit_of_id,
        **_place(run),
        task=task_name(task),
        task_digest=task.digest,
        task_type=str(task.definition.get("task_type", "-")),
        base_model=str(task.definition.get("base_model", "-")),
        budget_seconds=None if budget is None else float(budget),
        seed=None if seed is None else int(seed),
        competitor=run_label(run),
        **_source(run),
        status=run.status,
        attempts=run.attempts,
        score=score,
        direction=direction,
        references=() if is_reference else reference_lines(session, task.digest, score, direction, None if seed is None else int(seed)),
        reason=short_reason(run.failure_reason),
        summary=summary,
        failure_reason=run.failure_reason,
        stderr_tail=tail,
        stderr_tail_from=tail_from,
        log_path=run.log_path,
        artifact_path=run.artifact_path,
        artifact_digest=run.artifact_digest,
        started_at=run.started_at,
        finished_at=run.finished_at,
        wall_seconds=run.wall_seconds,
        attempt_history=attempt_lines(run),
    )


def write_result_json(store: Store, run_id: int, run_dir: Path) -> Path:
    """``run_dir/result.json``: the run as ``runs show --json`` prints it, written once it has ended
    (``orchestrator.drive``'s ``on_stored`` for a tournament's runs; the workbench for ad-hoc ones)."""
    path = run_dir / RESULT_FILE_NAME
    run_dir.mkdir(parents=True, exist_ok=True)
    with store.session() as session:
        detail = read_run_detail(session, run_id, tail_lines=RESULT_TAIL_LINES, private=True)
    path.write_text(json.dumps(detail.to_json(), indent=2) + "\n", encoding="utf-8")
    return path


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
    reason: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# ``runs list --tournament`` value that selects the runs played outside any tournament.
AD_HOC = "ad hoc"
# Values of the tournament filter that select some of the runs outside tournaments: what the list's
# tournament column says of them (``cli.runs.list_row``).
OUTSIDE_KINDS = {"reference": RunOrigin.REFERENCES, "audit": (RunOrigin.AUDIT,)}
# The shortest digest prefix ``runs list --task`` takes as one: shorter ones would match too many tasks by chance.
TASK_DIGEST_PREFIX_MIN = 6


def _summary(run: Run) -> RunSummary:
    score, direction = score_of(run)
    place = _place(run)
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
        status=run.status,
        attempts=run.attempts,
        score=score,
        reason=short_reason(run.failure_reason),
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
    ``limit`` (all when None). Filters: one tournament by name (or :data:`AD_HOC` for those outside),
    one competitor (by name), one status, one task (its name or a digest prefix). Filters and the
    window are the database's: a page after a cursor costs about what the first page does, however
    deep (indexes serve play order, migration 0015); one at an offset grows with the runs it skips. An
    ``after`` that is no run of these lists is refused (UnknownCursor); a run the filters leave out
    still has its place in the order (a run's status changes while a client pages)."""
    outside: Select[tuple[Run]] | None = _outside_tournaments().order_by(Run.id)
    if tournament in OUTSIDE_KINDS:
        outside = outside.where(Run.origin.in_(OUTSIDE_KINDS[tournament]))
    played = select(Tournament.id).order_by(Tournament.id)
    if tournament is not None and tournament not in (AD_HOC, *OUTSIDE_KINDS):
        played, outside = played.where(Tournament.name == tournament), None
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
        if status is not None:
            query = query.where(Run.status == status)
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
    return [_summary(run) for run in _loaded_runs(session, ids)]


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
    return [_summary(run) for run in reversed(list(session.scalars(newest)))]


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
                       stored_tasks: bool = False) -> UnknownFilter | None:  # fmt: skip
    """The first filter of :func:`list_runs` that names something that is not there, or None. A task
    is there when a tournament played it or a listed run was made on it, and with ``stored_tasks`` (the
    operator's callers) when a pool stores it: such a task with no runs yet lists no runs, rather than
    being unknown. A customer's job task is not there (its name is the customer's)."""
    if tournament not in (None, AD_HOC, *OUTSIDE_KINDS) and get_tournament_by_name(session, tournament) is None:
        return UnknownFilter("tournament", tournament, f"no tournament named {tournament!r}; the tournament filter "
                             f"takes a tournament's name, or {AD_HOC!r} for the runs outside tournaments ('reference' "
                             "for the references alone, 'audit' for the audits)")  # fmt: skip
    if competitor is not None and get_competitor(session, competitor) is None and not has_labelled_runs(session, competitor):
        return UnknownFilter("competitor", competitor, f"no competitor named {competitor!r}; the competitor filter "
                             f"takes a registered competitor's name, a working tree's as the list shows it ('NAME"
                             f"{TREE_SUFFIX}') or its path, {' or '.join(map(repr, REFERENCE_LABELS.values()))}")  # fmt: skip
    if task is not None and not _task_is_known(session, task, stored_tasks=stored_tasks):
        return UnknownFilter("task", task, f"no task named {task!r}; the task filter takes a task's name, or the "
                             f"first {TASK_DIGEST_PREFIX_MIN} or more characters of its digest")  # fmt: skip
    return None


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


def read_run_log(session: Session, run_id: int, stream: str, *, tail_lines: int | None) -> str:
    """The run's ``stream`` log (a key of :data:`LOG_NAMES`), whole or its last ``tail_lines`` lines.
    Only the fixed file names in the run's own log folder are read: nothing a caller names as a path.
    A customer's job run is unknown here (:func:`visible_run`)."""
    run = visible_run(session, run_id)
    log = None if run.log_path is None else Path(run.log_path) / LOG_NAMES[stream]
    if log is None or not log.is_file():
        raise UnknownLogError(f"run {run_id} has no {LOG_NAMES[stream]} (not started yet, or its folder was cleaned up)")
    with log.open(encoding="utf-8", errors="replace") as handle:
        return "".join(handle if tail_lines is None else deque(handle, maxlen=tail_lines))
