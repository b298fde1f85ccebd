"""Plain data the tournament engine takes and returns. No I/O anywhere in ``engine``.

The engine is a pure stepper: given a :class:`TournamentRecord` (who entered, the seed, the defending
champion, and every round played so far with its task outcomes) it returns the next decision,
``PlayRound`` or ``Finished``. The orchestrator carries decisions out against the store and the
execution backends, stores the outcomes, and asks again. Anyone holding the record can replay it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, get_args

from trainarena.contract import Direction

# The kinds of tournament: text tasks (instruct, chat, DPO, GRPO) and image tasks, each with its own champion.
# A Literal, so that an option or a request field of this type refuses any other kind by itself.
TournamentKind = Literal["text", "image"]
TOURNAMENT_KINDS: tuple[str, ...] = get_args(TournamentKind)


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
    # Per task, the unit the paired rule divides a lead by (engine.paired.relative_lead); None, or an
    # empty tuple for every task, means the larger |score| of the two. All None is kept as the empty
    # tuple, so a match reads back equal however its units were spelt.
    lead_units: tuple[float | None, ...] = ()

    def __post_init__(self) -> None:
        if all(unit is None for unit in self.lead_units):
            object.__setattr__(self, "lead_units", ())
        if self.lead_units and len(self.lead_units) != len(self.tasks):
            raise ValueError(f"match {self.match.match_id}: {len(self.lead_units)} lead units for {len(self.tasks)} tasks")

    def lead_unit(self, task: int) -> float | None:
        return self.lead_units[task] if self.lead_units else None


@dataclass(frozen=True)
class PlayedRound:
    plan: RoundPlan
    matches: tuple[PlayedMatch, ...]


@dataclass(frozen=True)
class TournamentRecord:
    entrants: tuple[str, ...]
    seed: int
    boss_tasks: int  # M, tasks per boss round, from settings by tournament kind
    champion: str | None = None  # the defending champion, if any
    rounds: tuple[PlayedRound, ...] = field(default_factory=tuple)


# --- Decisions the engine returns (added with the engine; plain data, no behaviour) ---------------


@dataclass(frozen=True)
class PlayRound:
    """Play this round next: train every match's competitors on its tasks, then store the outcomes."""

    plan: RoundPlan


@dataclass(frozen=True)
class Finished:
    """The tournament is over (docs/rules.md, 'How a tournament ends')."""

    champion: str | None  # None only in the documented no-winner outcome
    crowned: bool  # True when the challenger took the title (or there was no champion before)
    challenger: str | None  # the final challenger (None if nobody survived)
    standings: tuple[str, ...]  # final ranking, best first (champion first), for weights
    reason: str  # plain words: why it ended this way


@dataclass(frozen=True)
class MatchDecision:
    """How one group or knockout match came out (docs/rules.md, "Ranking", "A match (group or knockout pair)")."""

    match_id: str
    ranking: tuple[str, ...]  # every competitor, best first
    points: tuple[int, ...]  # rank points, aligned with ``ranking``
    advancers: tuple[str, ...]  # who goes on (never someone who failed every task)
    task_winners: tuple[str | None, ...]  # per task; None where everyone failed


@dataclass(frozen=True)
class BossTaskResult:
    """One boss task with the margin check spelled out (docs/rules.md, 'Boss round')."""

    task_index: int
    challenger_score: float | None  # None: the run failed
    champion_score: float | None
    lead: float | None  # challenger's lead in the task's direction (positive = challenger better)
    required_lead: float | None  # max(boss_margin * |champion score|, boss_margin_floor)
    margin_met: bool
    bootstrap_win_fraction: float | None  # share of resampled mean leads > 0; None when not computed
    bootstrap_met: bool | None  # None when the gate is off or was not needed
    taken: bool  # the challenger took this task
    reason: str
    relative_lead: float | None = None  # paired rule: the lead over the larger |score| (+-1 for a failure)


@dataclass(frozen=True)
class BossDecision:
    challenger: str
    champion: str
    tasks: tuple[BossTaskResult, ...]
    taken: int  # boss tasks the challenger took
    needed: int  # strict majority of the boss tasks (what the majority rule asks)
    crowned: bool
    rule: str = "majority"  # TournamentRules.boss_rule that decided it
    decided: bool = True  # False: the paired rule is unclear and plays another boss round
    reason: str = ""  # plain words: why it came out this way
    mean_lead: float | None = None  # paired rule: mean relative lead and its one-sided bounds
    lower_bound: float | None = None
    upper_bound: float | None = None


@dataclass(frozen=True)
class Weights:
    """Per-competitor weights plus the explicit undistributed remainder: sum(weights) + undistributed == 1.

    The remainder belongs to nobody: the operator decides where it goes (a burn or treasury key kept
    apart from competitors); it is never paid to the champion as a stand-in."""

    weights: dict[str, float]
    undistributed: float
