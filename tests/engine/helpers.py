"""Small builders shared by the engine tests."""

from __future__ import annotations

from collections.abc import Sequence

from trainarena.contract import Direction
from trainarena.engine import Match, PlayedMatch, TaskOutcome


def outcome(name: str, score: float | None, per_example: Sequence[float] = ()) -> TaskOutcome:
    return TaskOutcome(name, score, None if score is not None else "failed", tuple(per_example))


def played(
    match_id: str,
    scores: Sequence[dict[str, float | None]],
    direction: Direction = Direction.LOWER,
    advance: int = 1,
) -> PlayedMatch:
    """A played match from one {competitor: score} dict per task (None = failed run)."""
    competitors = tuple(scores[0])
    match = Match(match_id, competitors, len(scores), advance)
    tasks = tuple(tuple(outcome(c, s) for c, s in task.items()) for task in scores)
    return PlayedMatch(match, (direction,) * len(scores), tasks)
