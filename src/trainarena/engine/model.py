"""Plain data the tournament engine takes and returns. No I/O anywhere in ``engine``.

The engine is a pure stepper: given a :class:`TournamentRecord` (who entered, the seed, the defending
champion, and every round played so far with its task outcomes) it returns the next decision,
``PlayRound`` or ``Finished``. The orchestrator carries decisions out against the store and the
execution backends, stores the outcomes, and asks again. Anyone holding the record can replay it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from trainarena.contract import Direction


class Stage(StrEnum):
    GROUP = "group"
    KNOCKOUT = "knockout"
    BOSS = "boss"


@dataclass(frozen=True)
class TaskOutcome:
    """One competitor's result on one task. ``score is None`` means the run failed (crash, timeout,
    invalid artifact, or a NaN/inf score), with ``failure`` saying why."""

    competitor: str
    score: float | None
    failure: str | None = None
    per_example: tuple[float, ...] = ()  # per-example scores in a fixed example order (bootstrap gate)


@dataclass(frozen=True)
class Match:
    """Competitors who train on the same tasks and are ranked against each other."""

    match_id: str  # unique within the tournament, e.g. "r1-g03", "r2-k01", "boss"
    competitors: tuple[str, ...]
    tasks: int  # how many tasks this match plays
    advance: int  # how many of it go on to the next round


@dataclass(frozen=True)
class RoundPlan:
    index: int  # 0-based round number
    stage: Stage
    matches: tuple[Match, ...]
    byes: tuple[str, ...] = ()  # advance without playing this round (knockout, odd count)


@dataclass(frozen=True)
class PlayedMatch:
    """A match with the outcomes of each of its tasks: ``tasks[i]`` holds one outcome per competitor."""

    match: Match
    directions: tuple[Direction, ...]
    tasks: tuple[tuple[TaskOutcome, ...], ...]


@dataclass(frozen=True)
class PlayedRound:
    plan: RoundPlan
    matches: tuple[PlayedMatch, ...]


@dataclass(frozen=True)
class TournamentRecord:
    entrants: tuple[str, ...]
    seed: int
    boss_tasks: int  # M, from settings by tournament kind
    champion: str | None = None  # the defending champion, if any
    rounds: tuple[PlayedRound, ...] = field(default_factory=tuple)
