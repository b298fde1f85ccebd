"""Reading tournaments back: how a stored tournament ended (the engine's replay of its record) and the
champion history per kind with the margin each crowning was won by."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from trainarena.engine import BossDecision, Finished, Replay, replay
from trainarena.reporting.leaderboard import Leaderboard, build_leaderboard
from trainarena.settings import TournamentRules
from trainarena.store import (
    Tournament,
    TournamentStatus,
    champion_history,
    get_draw,
    load_record,
    load_tournament,
    stored_weights,
)
from trainarena.store.driving import Driving, drivers_of
from trainarena.store.records import rules_of


def tournament_replay(session: Session, tournament_id: int, rules: TournamentRules) -> tuple[Tournament, Replay]:
    """The tournament (its record loaded) and the engine's replay of its complete rounds, under the
    rules it is played under (``rules``, the settings', only for one not driven yet)."""
    tournament = load_tournament(session, tournament_id)
    rules = rules_of(tournament, rules)
    return tournament, replay(load_record(tournament, rules), rules)


def finished_of(tournament: Tournament, replayed: Replay) -> Finished | None:
    return replayed.next if tournament.status == TournamentStatus.FINISHED and isinstance(replayed.next, Finished) else None


@dataclass(frozen=True)
class TournamentDetail:
    """What `tournament show` prints and ``GET /v1/tournaments/{id}`` answers: the leaderboard (bracket
    runs, standings, outcome), the pool and its drawn tasks, the boss round, the weights and, while it
    runs, who drives it."""

    id: int
    board: Leaderboard
    replayed: Replay
    pool: str | None
    tasks: list[str] | None
    weights: dict[str, float]
    driver: Driving | None  # a running tournament's driver (not alive: none drives it); None for any other

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, **self.board.to_json(), "pool": self.pool, "tasks": self.tasks,
                "boss": boss_json(self.replayed.boss), "weights": self.weights,
                "driver": None if self.driver is None else self.driver.to_json()}


def tournament_detail(session: Session, tournament_id: int, rules: TournamentRules) -> TournamentDetail:
    """Tournament ``tournament_id`` read back in full; StoreError when there is none."""
    tournament, replayed = tournament_replay(session, tournament_id, rules)
    board = build_leaderboard(session, tournament, finished_of(tournament, replayed))
    draw = get_draw(session, tournament_id)
    return TournamentDetail(tournament.id, board, replayed, None if draw is None else draw.pool.name,
                            None if draw is None else list(draw.task_names), stored_weights(session, tournament_id),
                            drivers_of(session, [tournament]).get(tournament.id))


def boss_json(boss: BossDecision | None) -> dict[str, Any] | None:
    if boss is None:
        return None
    return {
        "challenger": boss.challenger, "champion": boss.champion, "taken": boss.taken, "needed": boss.needed,
        "crowned": boss.crowned, "rule": boss.rule, "reason": boss.reason,
        "tasks": [{"task": t.task_index + 1, "challenger_score": t.challenger_score, "champion_score": t.champion_score,
                   "lead": t.lead, "required_lead": t.required_lead, "relative_lead": t.relative_lead, "taken": t.taken,
                   "reason": t.reason} for t in boss.tasks],
    }


def margin_text(boss: BossDecision | None) -> str:
    """How a crowning was won: the boss tasks taken and the mean lead over the champion on them."""
    if boss is None:
        return "no defending champion"
    if boss.rule == "paired":
        return boss.reason
    leads = [t.lead for t in boss.tasks if t.taken and t.lead is not None]
    mean = f", mean lead {sum(leads) / len(leads):.4g}" if leads else ""
    return f"took {boss.taken} of {len(boss.tasks)} boss tasks (needed {boss.needed}){mean}"


@dataclass(frozen=True)
class Reign:
    kind: str
    champion: str
    since: datetime
    tournament_id: int | None
    tournament: str | None
    margin: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "champion": self.champion, "since": self.since.isoformat(),
                "tournament_id": self.tournament_id, "tournament": self.tournament, "margin": self.margin}


def champion_reigns(session: Session, rules: TournamentRules, kind: str | None = None) -> list[Reign]:
    """Every crowning, oldest first (the last of a kind reigns), with the margin it was won by."""
    reigns = []
    for row in champion_history(session, kind):
        margin, tournament = "-", row.tournament
        if tournament is not None:
            _, replayed = tournament_replay(session, tournament.id, rules)
            margin = margin_text(replayed.boss)
        reigns.append(Reign(row.kind, row.competitor.name, row.crowned_at, None if tournament is None else tournament.id,
                            None if tournament is None else tournament.name, margin))
    return reigns
