"""The engine's view of a stored tournament: the record ``engine.next_step`` decides from.

A run counts as a score only when it SUCCEEDED and its evaluation has a finite score; anything else
is a failed outcome with the stored reason. Only complete rounds (every run finished) are played rounds.
Per-example values are passed on as stored; a task whose evaluations were stored in two forms (shares
of the score, ``engine.scores``, and the older per-example scores) passes none, since the two are on
different scales and a paired bootstrap of them would mean nothing.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session, contains_eager, selectinload

from trainarena.contract import Direction, RunStatus
from trainarena.engine.lookahead import OpenMatch
from trainarena.engine.model import Match, PlayedMatch, PlayedRound, RoundPlan, Stage, TaskOutcome, TournamentRecord
from trainarena.engine.paired import task_lead_unit
from trainarena.engine.scores import has_shares
from trainarena.settings import TournamentRules
from trainarena.store.competitors import StoreError
from trainarena.store.models import MatchRow, Round, Run, RunAttempt, TaskRow, Tournament, TournamentEntrant

if TYPE_CHECKING:
    from sqlalchemy.orm.strategy_options import _AbstractLoad


def boss_tasks_for(kind: str, rules: TournamentRules) -> int:
    return rules.boss_tasks_image if kind == "image" else rules.boss_tasks_text


def _runs_with_outcomes(matches: _AbstractLoad) -> list[_AbstractLoad]:
    """Load options for the runs of the ``matches`` loaded: with their competitor, attempts and
    counted evaluation, in a handful of queries (not one per run)."""
    runs = matches.selectinload(MatchRow.tasks).selectinload(TaskRow.runs)
    return [
        runs.selectinload(Run.competitor),
        runs.selectinload(Run.attempt_records),
        runs.selectinload(Run.counted_attempt).selectinload(RunAttempt.evaluation),
    ]


def load_tournament(session: Session, tournament_id: int) -> Tournament:
    """A tournament with its whole record loaded."""
    tournament = session.get(
        Tournament,
        tournament_id,
        options=[
            *_runs_with_outcomes(selectinload(Tournament.rounds).selectinload(Round.matches)),
            selectinload(Tournament.entrants).selectinload(TournamentEntrant.competitor),
        ],
        populate_existing=True,
    )
    if tournament is None:
        raise StoreError(f"no tournament with id {tournament_id}")
    return tournament


# What a driver's step needs of a tournament in play: its open round, found and loaded alone, so that a
# step costs the same in the first round as after thousands of finished runs (docs/benchmarks.md).

_UNFINISHED = tuple(status.value for status in RunStatus if not status.finished)


def open_round(session: Session, tournament_id: int) -> Round | None:
    """The tournament's first round with an unfinished run (the first not ``is_round_complete``), in one
    query; None when every stored round is complete. Its matches are loaded when first read."""
    return session.scalar(
        select(Round).join(Round.matches).join(MatchRow.tasks).join(TaskRow.runs)
        .where(Round.tournament_id == tournament_id, Run.status.in_(_UNFINISHED))
        .order_by(Round.index).limit(1)
    )


def load_round(session: Session, round_id: int) -> Round:
    """A round with its whole record loaded (for ``open_matches``)."""
    round_row = session.get(Round, round_id, options=_runs_with_outcomes(selectinload(Round.matches)),
                            populate_existing=True)
    if round_row is None:
        raise StoreError(f"no round with id {round_id}")
    return round_row


def pending_runs(session: Session, round_id: int, limit: int | None = None) -> list[Run]:
    """The round's pending runs in the order they are claimed (match, task, then creation), the first
    ``limit`` of them (None: all), each with its task, match, competitor and attempts loaded."""
    return list(session.scalars(
        select(Run).join(Run.task).join(TaskRow.match)
        .where(MatchRow.round_id == round_id, Run.status == RunStatus.PENDING.value)
        .order_by(MatchRow.position, TaskRow.index, Run.id).limit(limit)
        .options(contains_eager(Run.task).contains_eager(TaskRow.match), selectinload(Run.competitor),
                 selectinload(Run.attempt_records))
    ))


def stored_attempts(session: Session, tournament_id: int) -> list[tuple[int, int]]:
    """(run id, counted attempt's number) of each of the tournament's runs whose report is stored."""
    return [(run_id, number) for run_id, number in session.execute(
        select(Run.id, RunAttempt.number).join(RunAttempt, Run.counted_attempt_id == RunAttempt.id)
        .join(Run.task).join(TaskRow.match).join(MatchRow.round)
        .where(Round.tournament_id == tournament_id).order_by(Run.id)
    )]


def _outcome(run: Run) -> TaskOutcome:
    """A run as the engine sees it: a finite score from a SUCCEEDED run, or a failure with its reason."""
    name = run.competitor.name
    evaluation = run.evaluation
    if run.status != RunStatus.SUCCEEDED:
        return TaskOutcome(name, None, run.failure_reason or f"run {run.status}")
    if evaluation is None:
        return TaskOutcome(name, None, "the artifact was not evaluated")
    if evaluation.score is None or not math.isfinite(evaluation.score):
        return TaskOutcome(name, None, evaluation.failure or f"score is not finite: {evaluation.score}")
    return TaskOutcome(name, evaluation.score, None, tuple(evaluation.per_example))


def _lead_unit(task: TaskRow) -> float | None:
    scored = [run.evaluation for run in task.runs if run.evaluation is not None and run.evaluation.score is not None]
    return task_lead_unit((evaluation.lead_unit for evaluation in scored), f"task {task.id}")


def _direction(task: TaskRow) -> Direction:
    directions = {run.evaluation.direction for run in task.runs if run.evaluation is not None}
    if len(directions) > 1:
        raise ValueError(f"task {task.id}: evaluations disagree on the score direction {sorted(directions)}")
    # With no evaluation every run failed, nobody's score is compared, and the direction is moot.
    return Direction(directions.pop()) if directions else Direction.LOWER


def round_plan(round_row: Round) -> RoundPlan:
    matches = tuple(
        Match(m.match_id, tuple(m.competitors), m.tasks_count, m.advance_count) for m in round_row.matches
    )
    return RoundPlan(round_row.index, Stage(round_row.stage), matches, tuple(round_row.byes))


def _task_outcomes(task: TaskRow, competitors: list[str]) -> tuple[TaskOutcome, ...]:
    by_name = {run.competitor.name: run for run in task.runs}
    outcomes = tuple(_outcome(by_name[name]) for name in competitors)
    forms = {has_shares(run.evaluation.details) for run in task.runs if run.evaluation is not None and run.evaluation.per_example}
    if len(forms) > 1:
        return tuple(replace(outcome, per_example=()) for outcome in outcomes)
    return outcomes


def _played_match(row: MatchRow) -> PlayedMatch:
    tasks = [_task_outcomes(task, row.competitors) for task in row.tasks]
    match = Match(row.match_id, tuple(row.competitors), row.tasks_count, row.advance_count)
    units = tuple(_lead_unit(task) for task in row.tasks)
    return PlayedMatch(match, tuple(_direction(task) for task in row.tasks), tuple(tasks), units)


def open_matches(round_row: Round, timed_out: frozenset[int] = frozenset()) -> tuple[OpenMatch, ...]:
    """A round as far as it is played, for ``engine.lookahead``: each finished run's outcome, a failure
    for the unfinished runs of ``timed_out`` (ids of runs whose script reached its deadline, so will end
    timed out), None for the others."""

    def outcome(run: Run) -> TaskOutcome | None:
        if RunStatus(run.status).finished:
            return _outcome(run)
        return TaskOutcome(run.competitor.name, None, "reached its deadline") if run.id in timed_out else None

    matches = []
    for row, match in zip(round_row.matches, round_plan(round_row).matches, strict=True):
        tasks = [{run.competitor.name: run for run in task.runs} for task in row.tasks]
        matches.append(OpenMatch(match, tuple(_direction(task) for task in row.tasks),
                                 tuple(tuple(outcome(runs[name]) for name in match.competitors) for runs in tasks)))
    return tuple(matches)


def is_round_complete(round_row: Round) -> bool:
    return all(RunStatus(run.status).finished for m in round_row.matches for t in m.tasks for run in t.runs)


def rules_of(tournament: Tournament, fallback: TournamentRules) -> TournamentRules:
    """The rules ``tournament`` is played under: those stored with it, else ``fallback`` (the settings'),
    for a tournament not driven yet."""
    return fallback if tournament.rules is None else TournamentRules.as_recorded(tournament.rules)


def fix_rules(tournament: Tournament, rules: TournamentRules) -> TournamentRules:
    """Store ``rules`` with ``tournament`` unless it has its own already; the rules it is played under.
    A tournament's rounds are only valid under the rules that planned them (the boss rule decides
    whether a boss round is replayed, the group sizes who meets whom), so settings changed since it
    began do not apply to it."""
    if tournament.rules is None:
        tournament.rules = rules.model_dump(mode="json")
    return rules_of(tournament, rules)


def load_record(tournament: Tournament, rules: TournamentRules) -> TournamentRecord:
    """The engine's view of a tournament: every complete stored round with its outcomes."""
    played = tuple(
        PlayedRound(round_plan(r), tuple(_played_match(m) for m in r.matches)) for r in tournament.rounds if is_round_complete(r)
    )
    return TournamentRecord(
        entrants=tuple(e.competitor.name for e in tournament.entrants),
        seed=tournament.seed,
        boss_tasks=boss_tasks_for(tournament.kind, rules),
        champion=None if tournament.champion_before is None else tournament.champion_before.name,
        rounds=played,
    )
