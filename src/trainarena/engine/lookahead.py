"""Looking one round ahead while a round's last runs are still training (docs/benchmarks.md, "Overhead").

A round's next round needs all of its outcomes, so at a round's end a run slot would wait for the
other slots' last scripts. The next round is often fixed long before that: in a knockout pair whose
other competitor already failed, the one still training goes on if its run succeeds, whatever its
score. :func:`foreseen_round` names that next round, so the orchestrator can train its runs early, on
slots that would otherwise wait, and store them once the round exists, exactly as if trained then.

What it promises: when it returns a plan, the tournament plays exactly that round next in every
completion in which the open round's unfinished runs succeed, whatever their scores. When one of them
fails, the next round may be another one; the orchestrator then drops what it trained early, unstored.
It never looks past a boss round (whether another follows depends on the scores themselves).

:func:`defender_boss_places` looks further: the defender's runs of the first boss round, whose tasks
are the same however many rounds lead to it. They are needed whenever a challenger reaches it, so a
slot that would wait trains them first, as a bet that loses only when nobody does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from trainarena.contract import Direction
from trainarena.engine.bracket import boss_match_id, next_step
from trainarena.engine.model import Match, PlayedMatch, PlayedRound, PlayRound, RoundPlan, Stage, TaskOutcome, TournamentRecord
from trainarena.engine.ranking import is_failed
from trainarena.settings import TournamentRules

# A run's place in a round: (match id, task index, competitor).
RunPlace = tuple[str, int, str]


@dataclass(frozen=True)
class OpenMatch:
    """A match of the open round as far as it is played: ``outcomes[i][j]`` is the outcome of
    ``match.competitors[j]`` on task ``i``, or None while that run is unfinished. ``directions`` are
    the tasks' score directions (any value for a task nobody has a score on yet)."""

    match: Match
    directions: tuple[Direction, ...]
    outcomes: tuple[tuple[TaskOutcome | None, ...], ...]

    def unfinished(self) -> set[str]:
        return {c for task in self.outcomes for c, o in zip(self.match.competitors, task, strict=True) if o is None}

    def may_advance(self) -> set[str]:
        """Who can still go on: every competitor with a success or an unfinished run."""
        return {c for task in self.outcomes for c, o in zip(self.match.competitors, task, strict=True)
                if o is None or not is_failed(o)}

    def settled(self) -> bool:
        """Its advancers no longer depend on any score still to come: it is finished, or no more of its
        competitors can still score than advance (so each that scores goes on, whatever its score)."""
        return not self.unfinished() or len(self.may_advance()) <= self.match.advance

    def assuming_success(self) -> PlayedMatch:
        """The match with every unfinished run succeeding (with a placeholder score, which a settled
        match's advancers do not depend on)."""
        tasks = tuple(tuple(TaskOutcome(c, 0.0) if o is None else o for c, o in zip(self.match.competitors, task, strict=True))
                      for task in self.outcomes)
        return PlayedMatch(self.match, self.directions, tasks)


def foreseen_round(record: TournamentRecord, plan: RoundPlan, matches: tuple[OpenMatch, ...],
                   rules: TournamentRules) -> RoundPlan | None:
    """The round played after ``plan`` (the record's next round, played as far as ``matches`` say) if
    its unfinished runs succeed, when that round no longer depends on their scores; None when it does
    (a match still open between more competitors than advance, a boss round) or when the tournament
    ends after it. Raises ValueError when ``plan`` is not the round the record plays next."""
    if plan.stage == Stage.BOSS or not all(m.settled() for m in matches):
        return None
    # The next round depends on who goes on (and the byes so far), not on the scores: so, settled,
    # any scores of the unfinished runs give it.
    played = PlayedRound(plan, tuple(m.assuming_success() for m in matches))
    step = next_step(replace(record, rounds=(*record.rounds, played)), rules)
    return step.plan if isinstance(step, PlayRound) else None


def defender_boss_places(record: TournamentRecord, plan: RoundPlan) -> tuple[RunPlace, ...]:
    """The defender's runs of the first boss round while it is still to come after the open round
    ``plan``, in the order that round will claim them: none when no champion defends, when ``plan`` is a
    boss round, or while the defender still plays in the bracket (winning it, it meets no boss round)."""
    defender = record.champion
    if defender is None or plan.stage == Stage.BOSS or defender in plan.byes \
            or any(defender in match.competitors for match in plan.matches):
        return ()
    return tuple((boss_match_id(0), task, defender) for task in range(record.boss_tasks))


def round_places(plan: RoundPlan) -> tuple[RunPlace, ...]:
    """Every run of a round, task by task within each match, in match order (the order its runs are
    created and claimed in)."""
    return tuple((m.match_id, task, c) for m in plan.matches for task in range(m.tasks) for c in m.competitors)
