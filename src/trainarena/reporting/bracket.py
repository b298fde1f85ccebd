"""A tournament's bracket as plain data, for pictures (the dashboard): every stored round with its
matches, each competitor's outcome per task, who advanced (once the engine decided the round), the byes,
and the boss round's per-task lead against the required margin. Read from the store and the engine's
replay of it, so a running tournament shows its played rounds decided and its current one in progress."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from trainarena.engine import BossDecision, BossTaskResult, Replay
from trainarena.operations.history import tournament_replay
from trainarena.reporting.reasons import short_reason
from trainarena.reporting.run_detail import score_of, task_name
from trainarena.settings import TournamentRules
from trainarena.store import MatchRow, Round, Run, Tournament
from trainarena.store.shown_status import shown_outcome


@dataclass(frozen=True)
class Outcome:
    """One competitor's run on one task of a match."""

    run_id: int
    status: str
    score: float | None
    reason: str  # one line; empty for a run that succeeded or has not ended (a cancelled one: why)


@dataclass(frozen=True)
class MatchView:
    match_id: str
    competitors: tuple[str, ...]  # in the engine's order
    tasks: tuple[str, ...]  # task names, in play order
    outcomes: dict[str, tuple[Outcome | None, ...]]  # competitor -> per task (None: no run stored)
    advance: int  # how many go on
    ranking: tuple[str, ...] | None  # best first, once the round is decided
    points: tuple[int, ...] | None
    advancers: tuple[str, ...] | None  # None while the round is being played


@dataclass(frozen=True)
class RoundView:
    index: int  # 0-based
    stage: str  # group | knockout | boss
    byes: tuple[str, ...]  # advance without playing this round
    matches: tuple[MatchView, ...]
    decided: bool  # every run ended and the engine decided the round


@dataclass(frozen=True)
class BossView:
    """The engine's decision of the boss round, with the name of each task it played."""

    decision: BossDecision
    task_names: tuple[str, ...]  # aligned with ``decision.tasks``

    @property
    def tasks(self) -> list[tuple[str, BossTaskResult]]:
        return list(zip(self.task_names, self.decision.tasks, strict=True))


@dataclass(frozen=True)
class Bracket:
    tournament_id: int
    rounds: tuple[RoundView, ...]
    boss: BossView | None  # the decided boss round; a boss round in play is among ``rounds``


def _shown(run: Run) -> tuple[str, float | None, str]:
    """(status, score, one-line reason) as the run reads (``store.shown_status.shown_outcome``)."""
    status, reason = shown_outcome(run)
    return status, score_of(run)[0], short_reason(reason)


def _outcomes(row: MatchRow) -> dict[str, tuple[Outcome | None, ...]]:
    per_task = []
    for task in row.tasks:
        by_name = {run.competitor.name: run for run in task.runs if run.competitor is not None}
        per_task.append({name: Outcome(run.id, *_shown(run)) for name, run in by_name.items()})
    return {name: tuple(task.get(name) for task in per_task) for name in row.competitors}


def _round_view(row: Round, replayed: Replay) -> RoundView:
    decision = next((d for d in replayed.rounds if d.plan.index == row.index), None)
    decided_matches = {} if decision is None else {d.match_id: d for d in decision.decisions}
    matches = []
    for match in row.matches:
        decided = decided_matches.get(match.match_id)
        matches.append(MatchView(
            match_id=match.match_id, competitors=tuple(match.competitors), tasks=tuple(task_name(t) for t in match.tasks),
            outcomes=_outcomes(match), advance=match.advance_count,
            ranking=None if decided is None else decided.ranking, points=None if decided is None else decided.points,
            advancers=None if decided is None else decided.advancers,
        ))  # fmt: skip
    # A boss round is decided once complete (the record holds complete rounds only); the paired rule may
    # then play another, still open.
    boss_decided = row.stage == "boss" and replayed.boss is not None and row.index < len(replayed.record.rounds)
    return RoundView(row.index, row.stage, tuple(row.byes), tuple(matches), decision is not None or boss_decided)


def _boss_view(boss: BossDecision | None, rounds: list[Round]) -> BossView | None:
    if boss is None:
        return None
    # The paired rule may play several boss rounds; its tasks are numbered across them, in play order.
    names = [task_name(t) for r in rounds if r.stage == "boss" for m in r.matches for t in m.tasks]
    return BossView(boss, tuple(names[t.task_index] if t.task_index < len(names) else f"task {t.task_index + 1}" for t in boss.tasks))


def bracket_of(tournament: Tournament, replayed: Replay) -> Bracket:
    """The bracket of a tournament whose record is loaded (``tournament_replay`` gives both)."""
    rounds = list(tournament.rounds)
    return Bracket(tournament.id, tuple(_round_view(r, replayed) for r in rounds), _boss_view(replayed.boss, rounds))


def read_bracket(session: Session, tournament_id: int, rules: TournamentRules) -> tuple[Tournament, Replay, Bracket]:
    """The tournament (record loaded), the engine's replay of it, and its bracket."""
    tournament, replayed = tournament_replay(session, tournament_id, rules)
    return tournament, replayed, bracket_of(tournament, replayed)
