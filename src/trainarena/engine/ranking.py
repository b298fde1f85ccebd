"""Per-task ranking and match decisions (docs/rules.md, "Ranking": "A task" and "A match").

A failed outcome (score None, NaN or +-inf) ranks below every success. On each task a competitor earns
one rank point for every competitor of the match it strictly beats there (a failure beats nobody, so
exact ties earn equal points). A match ranks its competitors by total points; equal totals are
ordered by a seeded draw from ``(seed, match_id)``. The top ``match.advance`` advance, except that a
competitor who failed every task never advances.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping, Sequence

from trainarena.contract import Direction
from trainarena.engine.model import MatchDecision, PlayedMatch, TaskOutcome
from trainarena.engine.seeding import seeded_order
from trainarena.settings import TournamentRules


def is_failed(outcome: TaskOutcome) -> bool:
    """A run that crashed, timed out, or produced a NaN/inf score."""
    return outcome.score is None or not math.isfinite(outcome.score)


def better_first_key(score: float, direction: Direction | str) -> float:
    """Sort key where smaller is better, whatever the task's direction."""
    if direction == Direction.LOWER:
        return score
    if direction == Direction.HIGHER:
        return -score
    raise ValueError(f"unknown direction {direction!r}; expected 'lower' or 'higher'")


def rank_task(outcomes: Sequence[TaskOutcome], direction: Direction) -> tuple[str, ...]:
    """Competitors of one task, best first; failures last. Exact ties keep their input order
    (``decide_match`` passes outcomes in its seeded-draw order, so the draw breaks them)."""
    succeeded = [o for o in outcomes if not is_failed(o)]
    failed = [o.competitor for o in outcomes if is_failed(o)]
    succeeded.sort(key=lambda o: better_first_key(o.score, direction))  # type: ignore[arg-type]
    return tuple(o.competitor for o in succeeded) + tuple(failed)


def task_keys(competitors: Sequence[str], outcomes: Sequence[TaskOutcome], direction: Direction) -> dict[str, float]:
    """Better-first keys of the competitors who succeeded; a missing outcome counts as a failure.

    Raises ValueError for an outcome of someone outside the match or two outcomes of one competitor."""
    allowed = set(competitors)
    seen: set[str] = set()
    keys: dict[str, float] = {}
    for outcome in outcomes:
        if outcome.competitor not in allowed:
            raise ValueError(f"outcome for {outcome.competitor!r}, who is not in this match")
        if outcome.competitor in seen:
            raise ValueError(f"two outcomes for {outcome.competitor!r} on one task")
        seen.add(outcome.competitor)
        if not is_failed(outcome):
            keys[outcome.competitor] = better_first_key(outcome.score, direction)  # type: ignore[arg-type]
    return keys


def task_points(competitors: Sequence[str], keys: Mapping[str, float]) -> dict[str, int]:
    """One point per competitor strictly beaten on the task; failures (absent from ``keys``) get 0."""
    ordered = sorted(keys.values())
    failures = len(competitors) - len(keys)
    return {c: (len(ordered) - bisect_right(ordered, keys[c]) + failures) if c in keys else 0 for c in competitors}


class _LazyDraw:
    """The seeded draw of a match, computed only when a tie needs it (most matches have none)."""

    def __init__(self, competitors: Sequence[str], seed: int, match_id: str) -> None:
        self._args = (competitors, seed, match_id)
        self._position: dict[str, int] | None = None

    def position(self, competitor: str) -> int:
        if self._position is None:
            competitors, seed, match_id = self._args
            order = seeded_order(competitors, seed, "ties", match_id)
            self._position = {c: i for i, c in enumerate(order)}
        return self._position[competitor]


def _task_winner(keys: Mapping[str, float], draw: _LazyDraw) -> str | None:
    if not keys:
        return None
    best = min(keys.values())
    leaders = [c for c, k in keys.items() if k == best]
    return leaders[0] if len(leaders) == 1 else min(leaders, key=draw.position)


def decide_match(played: PlayedMatch, rules: TournamentRules, seed: int) -> MatchDecision:
    """Rank a group or knockout match and name who advances (``rules`` is accepted for symmetry with
    the other deciders; the ranking itself has no tunable constant)."""
    del rules
    match = played.match
    if len(played.tasks) != match.tasks or len(played.directions) != match.tasks:
        raise ValueError(
            f"match {match.match_id}: {match.tasks} tasks planned, got {len(played.tasks)} outcome sets "
            f"and {len(played.directions)} directions"
        )
    competitors = match.competitors
    totals = dict.fromkeys(competitors, 0)
    successes = dict.fromkeys(competitors, 0)
    draw = _LazyDraw(competitors, seed, match.match_id)
    winners: list[str | None] = []
    for direction, outcomes in zip(played.directions, played.tasks, strict=True):
        keys = task_keys(competitors, outcomes, direction)
        for competitor, points in task_points(competitors, keys).items():
            totals[competitor] += points
        for competitor in keys:
            successes[competitor] += 1
        winners.append(_task_winner(keys, draw))
    tied = len(set(totals.values())) < len(totals)
    if tied:
        ranking = sorted(competitors, key=lambda c: (-totals[c], draw.position(c)))
    else:
        ranking = sorted(competitors, key=lambda c: -totals[c])
    advancers = [c for c in ranking if successes[c] > 0][: match.advance]
    return MatchDecision(
        match_id=match.match_id,
        ranking=tuple(ranking),
        points=tuple(totals[c] for c in ranking),
        advancers=tuple(advancers),
        task_winners=tuple(winners),
    )
