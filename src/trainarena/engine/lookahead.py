"""Looking one round ahead while a round's last runs are still training (docs/benchmarks.md, "Overhead").

A round's next round needs all of its outcomes, so at a round's end a run slot would wait for the
other slots' last scripts. Many runs of the next round are known long before that. :func:`look_ahead`
plays every completion of the open round through the bracket (each unfinished run fails, or
succeeds at each rank position its task allows) and returns the distinct rounds that can follow:

- :meth:`Lookahead.certain`: the runs of the next round whatever the unfinished runs do (none when
  some completion ends the tournament). Trained early, on slots that would otherwise wait, and
  stored once their round exists, exactly as if trained then, they are never wasted;
- :meth:`Lookahead.possible`: the runs of any round that can follow; an early run outside them is
  proved unneeded;
- :meth:`Lookahead.bets`: the possible runs that are not certain, best bet first, for a slot that
  would otherwise idle: first those of the rounds that follow if every unfinished run succeeds. A
  run still training has outlived the failures that come at once (a crash, a refused task type, an
  invalid artifact take seconds) and scripts are written to end within their budget; nothing else
  in a tournament says which way a run will go (a competitor's history across tournaments would).

Why the completions cover every outcome: a group or knockout match is ranked from the order of each
task's scores alone (``engine.ranking``: a point per competitor strictly beaten, ties by exact
equality, equal totals by a seeded draw), never from their values. So it is enough to place each
unfinished run as failed, tied with each distinct score of its task, or in each gap between them,
in every order among the unfinished runs of the same task (every weak order). The next round
depends on a match only through its advancers (``engine.bracket``: who is alive; the rest of a
match shapes only the final standings), so each match keeps one completion per set of advancers
before the matches are combined. A boss round is decided on score values (margins, a sequential
test), so nothing is foreseen past an open boss round (the boss round itself, as a next round,
depends only on who reaches it). Past ``max_completions`` the lookahead gives up (None).

A run of a round yet to be created is named by everything its run and task depend on
(:class:`NextRun`): the round's index and stage, the match id and task index (the task source and
the task's seed take those and nothing else: not who else plays the match), and the competitor.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from trainarena.contract import Direction
from trainarena.engine.bracket import next_steps
from trainarena.engine.model import Match, PlayedMatch, PlayedRound, PlayRound, RoundPlan, Stage, TaskOutcome, TournamentRecord
from trainarena.engine.ranking import better_first_key, decide_match, is_failed
from trainarena.settings import TournamentRules

UNFINISHED_FAILS = "an unfinished run, supposed failed"


@dataclass(frozen=True)
class NextRun:
    """A run of a round yet to be created, by everything it and its task depend on."""

    round_index: int
    stage: Stage
    match_id: str
    task_index: int
    competitor: str


def round_runs(plan: RoundPlan) -> tuple[NextRun, ...]:
    """Every run of a round, task by task within each match, in match order (the order its runs are
    created and claimed in)."""
    return tuple(NextRun(plan.index, plan.stage, m.match_id, task, c)
                 for m in plan.matches for task in range(m.tasks) for c in m.competitors)


@dataclass(frozen=True)
class OpenMatch:
    """A match of the open round as far as it is played: ``outcomes[i][j]`` is the outcome of
    ``match.competitors[j]`` on task ``i``, or None while that run is unfinished. ``directions`` are
    the tasks' score directions (any value for a task nobody has a score on yet)."""

    match: Match
    directions: tuple[Direction, ...]
    outcomes: tuple[tuple[TaskOutcome | None, ...], ...]


@dataclass(frozen=True)
class Lookahead:
    """The distinct rounds that can follow the open round, in the order the completions found them
    (None stands for the tournament's end), and those of them that follow when every unfinished run
    succeeds."""

    rounds: tuple[RoundPlan | None, ...]
    if_all_succeed: tuple[RoundPlan | None, ...] = ()

    def certain(self) -> tuple[NextRun, ...]:
        """The runs of the next round whatever the unfinished runs do, in claim order."""
        if not self.rounds or None in self.rounds:
            return ()
        first, *others = (round_runs(plan) for plan in self.rounds if plan is not None)
        common = set(first).intersection(*others)
        return tuple(run for run in first if run in common)

    def possible(self) -> frozenset[NextRun]:
        """The runs of any round that can follow: a run outside them is never played next."""
        return frozenset(run for plan in self.rounds if plan is not None for run in round_runs(plan))

    def bets(self) -> tuple[NextRun, ...]:
        """The possible runs that are not certain, best bet first: those in more of the rounds that
        follow if every unfinished run succeeds, then those in more of all the rounds that can follow
        (each round counts once: nothing here says which scores are likelier), then in the order the
        rounds were found, each in claim order."""
        certain = set(self.certain())
        likely, every = _counts(self.if_all_succeed), _counts(self.rounds)
        return tuple(sorted((run for run in every if run not in certain), key=lambda run: (-likely.get(run, 0), -every[run])))


def _counts(plans: Sequence[RoundPlan | None]) -> dict[NextRun, int]:
    """How many of ``plans`` each of their runs is in, in the order the plans first name them."""
    counts: dict[NextRun, int] = {}
    for plan in plans:
        for run in round_runs(plan) if plan is not None else ():
            counts[run] = counts.get(run, 0) + 1
    return counts


def look_ahead(record: TournamentRecord, plan: RoundPlan, matches: Sequence[OpenMatch], rules: TournamentRules,
               max_completions: int) -> Lookahead | None:
    """The rounds that can follow ``plan`` (the record's next round, played as far as ``matches``
    say), over every completion of its unfinished runs; None past an open boss round or when the
    completions to examine (of a task, of a match's tasks, of the round's matches) exceed
    ``max_completions``. Raises ValueError when ``plan`` is not the round the record plays next."""
    if plan.stage == Stage.BOSS:
        return None
    per_match = []
    for open_match in matches:
        completions = _match_completions(open_match, rules, record.seed, max_completions)
        if completions is None:
            return None
        per_match.append(completions)
    if math.prod(len(c) for c in per_match) > max_completions:
        return None
    combinations = list(itertools.product(*per_match))
    completions = (PlayedRound(plan, tuple(played for played, _ in matches)) for matches in combinations)
    rounds: dict[RoundPlan | None, bool] = {}  # each round that can follow: whether all succeeding reaches it
    for matches, step in zip(combinations, next_steps(record, rules, completions), strict=True):
        following = step.plan if isinstance(step, PlayRound) else None
        rounds[following] = rounds.get(following, False) or all(succeeded for _, succeeded in matches)
    return Lookahead(tuple(rounds), tuple(following for following, likely in rounds.items() if likely))


def _match_completions(open_match: OpenMatch, rules: TournamentRules, seed: int,
                       cap: int) -> tuple[tuple[PlayedMatch, bool], ...] | None:
    """One completion of the match per set of advancers it can still have, each with whether its
    unfinished runs can all succeed and give those advancers (None past ``cap``)."""
    tasks = []
    for direction, outcomes in zip(open_match.directions, open_match.outcomes, strict=True):
        completions = _task_completions(open_match.match.competitors, direction, outcomes, cap)
        if completions is None:
            return None
        tasks.append(completions)
    if math.prod(len(t) for t in tasks) > cap:
        return None
    by_advancers: dict[tuple[str, ...], tuple[PlayedMatch, bool]] = {}
    for completed in itertools.product(*tasks):
        played = PlayedMatch(open_match.match, open_match.directions, tuple(outcomes for outcomes, _ in completed))
        succeeded = all(task_succeeded for _, task_succeeded in completed)
        advancers = decide_match(played, rules, seed).advancers
        first, reached = by_advancers.get(advancers, (played, False))
        by_advancers[advancers] = first, reached or succeeded
    return tuple(by_advancers.values())


# A task's completion: the successes' levels, best first, each the finished key it ties with (None
# for a new one) and the unfinished runs placed there; and the unfinished runs that fail.
_Order = tuple[tuple[tuple[float | None, frozenset[str]], ...], frozenset[str]]


def _task_completions(competitors: tuple[str, ...], direction: Direction, outcomes: tuple[TaskOutcome | None, ...],
                      cap: int) -> list[tuple[tuple[TaskOutcome, ...], bool]] | None:
    """A task's outcomes in each weak order of its unfinished runs among its finished scores, each
    with whether all of them succeed in it."""
    unfinished = [c for c, o in zip(competitors, outcomes, strict=True) if o is None]
    keys = sorted({better_first_key(o.score, direction) for o in outcomes if o is not None and not is_failed(o)})  # type: ignore[arg-type]
    orders: dict[_Order, None] = {(tuple((key, frozenset()) for key in keys), frozenset()): None}
    for name in unfinished:
        grown: dict[_Order, None] = {}
        for levels, failed in orders:
            grown[levels, failed | {name}] = None
            for i, (key, members) in enumerate(levels):
                grown[(*levels[:i], (key, members | {name}), *levels[i + 1:]), failed] = None
            for i in range(len(levels) + 1):
                grown[(*levels[:i], (None, frozenset({name})), *levels[i:]), failed] = None
        if len(grown) > cap:
            return None
        orders = grown
    completions = []
    for levels, failed in orders:
        level_keys = _level_keys([key for key, _ in levels])
        if level_keys is None:  # no float scores fall in this order
            continue
        placed = {name: key for (_, members), key in zip(levels, level_keys, strict=True) for name in members}
        completions.append((tuple(
            o if o is not None
            else TaskOutcome(c, None, UNFINISHED_FAILS) if c in failed
            else TaskOutcome(c, placed[c] if direction == Direction.LOWER else -placed[c])
            for c, o in zip(competitors, outcomes, strict=True)), not failed))
    return completions


def _level_keys(keys: list[float | None]) -> list[float] | None:
    """Strictly increasing keys: a finished level keeps its own, each new one (None) gets a float
    strictly between its neighbours; None when there are too few floats between them."""
    filled: list[float] = []
    start = 0
    while start < len(keys):
        known = keys[start]
        if known is not None:
            filled.append(known)
            start += 1
            continue
        end = next((i for i in range(start, len(keys)) if keys[i] is not None), len(keys))
        between = _floats_between(filled[-1] if filled else None, keys[end] if end < len(keys) else None, end - start)
        if between is None:
            return None
        filled += between
        start = end
    return filled


def _floats_between(low: float | None, high: float | None, count: int) -> list[float] | None:
    """``count`` increasing finite floats strictly between ``low`` and ``high`` (None: unbounded), or
    None when there are not that many."""
    if low is None and high is None:
        return [float(n) for n in range(count)]
    values, value = [], low if low is not None else high
    for _ in range(count):
        value = math.nextafter(value, math.inf if low is not None else -math.inf)  # type: ignore[arg-type]
        values.append(value)
    values = values if low is not None else values[::-1]
    fits = all(math.isfinite(v) for v in values) and (high is None or values[-1] < high)
    return values if fits else None
