"""A competitor's scores over time against the champion's, as plain data (the dashboard charts it).

Scores are comparable only on one task, so each point is one of the competitor's tournament runs
beside the score, on that same task, of the tournament's champion: its winner, or the defender when
the competitor is the winner (or nobody won); the champion's score is there when it played that task
(the boss round, or a match they shared).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from trainarena.reporting.run_detail import score_of, task_name
from trainarena.store import Competitor, MatchRow, Round, Run, TaskRow, Tournament


@dataclass(frozen=True)
class ScorePoint:
    run_id: int
    tournament: str
    task: str
    finished_at: datetime | None
    score: float | None  # None: the run failed or has not ended
    champion: str | None
    champion_score: float | None  # None: the champion did not play (or failed) this task
    direction: str | None  # lower | higher, once scored


def _champion(tournament: Tournament, competitor: Competitor) -> Competitor | None:
    """The champion the competitor is measured against: never itself."""
    return next((c for c in (tournament.champion_after, tournament.champion_before) if c is not None and c.id != competitor.id), None)


def score_history(session: Session, competitor: Competitor) -> list[ScorePoint]:
    """Every tournament run of ``competitor`` in play order (tournament, round, match, task)."""
    runs = session.scalars(
        select(Run).join(Run.task).join(TaskRow.match).join(MatchRow.round).join(Round.tournament)
        .where(Run.competitor_id == competitor.id)
        .order_by(Tournament.id, Round.index, MatchRow.position, TaskRow.index)
    )  # fmt: skip
    points = []
    for run in runs:
        tournament = run.task.match.round.tournament
        champion = _champion(tournament, competitor)
        rival = None if champion is None else next((r for r in run.task.runs if r.competitor_id == champion.id), None)
        score, direction = score_of(run)
        rival_score, rival_direction = (None, None) if rival is None else score_of(rival)
        points.append(ScorePoint(run.id, tournament.name, task_name(run.task), run.finished_at, score,
                                 None if champion is None else champion.name, rival_score, direction or rival_direction))  # fmt: skip
    return points
