"""The engine's decisions written to the store, each in the caller's transaction: a round to play
becomes its rows (``PlayRound``), a finished tournament its crowning, weights and outcome (``Finished``).
The orchestrator's driver takes these steps under its lease (``orchestrator``)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from trainarena.engine.model import Finished, RoundPlan
from trainarena.engine.weights import tournament_weights
from trainarena.round_tasks import task_of
from trainarena.runs import TaskSource, definition_json, task_key
from trainarena.settings import WeightRules
from trainarena.store import (
    ChampionHistory,
    MatchRow,
    Round,
    Run,
    TaskRow,
    Tournament,
    TournamentStatus,
    WeightRow,
    require_competitor,
)


def create_round(session: Session, tournament: Tournament, plan: RoundPlan, task_source: TaskSource) -> int:
    """The round's rows, with one pending run per competitor and task. Returns the number of runs."""
    round_row = Round(index=plan.index, stage=plan.stage.value, byes=list(plan.byes))
    runs = 0
    for position, match in enumerate(plan.matches):
        match_row = MatchRow(
            match_id=match.match_id,
            position=position,
            competitors=list(match.competitors),
            tasks_count=match.tasks,
            advance_count=match.advance,
        )
        competitors = [require_competitor(session, name) for name in match.competitors]
        for index in range(match.tasks):
            definition = task_of(task_source, tournament, plan.stage, plan.index, match.match_id, index)
            task = TaskRow(index=index, definition=definition_json(definition), digest=task_key(definition))
            task.runs = [Run(competitor=competitor) for competitor in competitors]
            match_row.tasks.append(task)
            runs += len(competitors)
        round_row.matches.append(match_row)
    # Attached last, through the parent: the whole round is written at once, or not at all.
    tournament.rounds.append(round_row)
    tournament.status = TournamentStatus.RUNNING
    return runs


def store_finish(session: Session, tournament: Tournament, finished: Finished, weight_rules: WeightRules,
                 champion_models_due: bool) -> None:
    """The tournament's end as the engine decided it: the champion's crowning (``champion_models_due``: its
    models owed to the registry), the weights, the outcome, FINISHED."""
    now = datetime.now(UTC)
    champion = None if finished.champion is None else require_competitor(session, finished.champion)
    if champion is not None and finished.crowned:
        session.add(ChampionHistory(kind=tournament.kind, competitor=champion, tournament=tournament, crowned_at=now,
                                    models_due=champion_models_due))
    entrants = [e.competitor.name for e in tournament.entrants]
    weights = tournament_weights(finished, entrants, weight_rules)
    for name, weight in weights.weights.items():
        session.add(WeightRow(tournament_id=tournament.id, competitor=require_competitor(session, name), weight=weight))
    tournament.weight_remainder = weights.undistributed
    tournament.champion_after = champion
    tournament.outcome_reason = finished.reason
    tournament.status = TournamentStatus.FINISHED
    tournament.finished_at = now
