"""Candidate boss procedures under run noise (part 1 of ``benchmarks.false_crown``; issue #15).

Each candidate is a set of ``TournamentRules`` plus, for repeated runs, seeds per task. Its decisions
are the engine's rule written over arrays (``engine.paired.bounds_over`` and ``verdicts`` for the
paired test, the 5% margin for the majority rule), re-checked on a sample of trials by
``decide_boss`` itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from trainarena.contract import Direction
from trainarena.engine import Match, PlayedMatch, TaskOutcome, decide_boss
from trainarena.engine.paired import Verdict, bounds_over, relative_lead, verdicts
from trainarena.settings import TournamentRules

TRIALS = 100_000  # per cell: one standard error of a 1% rate is 0.03%
# 5%, and 5.1%: the largest training noise benchmarks.noise measured for a loss type (chat, the house
# script, 45 s runs; docs/rules.md "Noise"). GRPO's relative noise, its rewards near 0, is not on this scale.
SIGMAS = (0.05, 0.051)
BETTER = 0.10  # the truly better challenger's loss is 10% lower
CHECKED_TRIALS = 40  # trials per cell re-decided by decide_boss


@dataclass(frozen=True)
class Candidate:
    name: str
    what: str  # one line for the table
    rules: TournamentRules
    seeds: int = 1  # runs per player and task (repeated runs; the task score is their mean)


DEFAULT = TournamentRules()
CANDIDATES = (
    Candidate("majority_3", "seed's rule: 5% on 2 of 3 tasks", TournamentRules(boss_rule="majority")),
    Candidate("majority_9", "5% on 5 of 9 tasks", TournamentRules(boss_rule="majority", boss_tasks_text=9)),
    Candidate("majority_3x3", "5% on 2 of 3 tasks, 3 seeds each", TournamentRules(boss_rule="majority"), seeds=3),
    Candidate("paired_12", "paired test, 12 tasks, 99%", TournamentRules(boss_tasks_text=12, boss_rounds_max=1, boss_confidence=0.99)),
    Candidate("paired_15", "paired test, 15 tasks, 99.7%", TournamentRules(boss_tasks_text=15, boss_rounds_max=1)),
    Candidate("default", "paired, sequential: 3 tasks a round, <= 5", DEFAULT),
)


def _scores(rng: np.random.Generator, sigma: float, challenger_loss: float, tasks: int, seeds: int) -> np.ndarray:
    """Task scores, shape (TRIALS, tasks, 2 [challenger, champion]): the mean of ``seeds`` runs each."""
    truth = np.array([challenger_loss, 1.0])
    runs = truth[None, None, :, None] * (1.0 + sigma * rng.standard_normal((TRIALS, tasks, 2, seeds)))
    return runs.mean(axis=-1)


def _majority(scores: np.ndarray, rules: TournamentRules) -> np.ndarray:
    challenger, champion = scores[..., 0], scores[..., 1]
    taken = champion - challenger >= np.maximum(rules.boss_margin * np.abs(champion), rules.boss_margin_floor)
    return taken.sum(axis=-1) > taken.shape[-1] // 2


def _paired(scores: np.ndarray, rules: TournamentRules) -> tuple[np.ndarray, np.ndarray]:
    """Crowned and boss rounds played per trial, stopping at the first clear verdict."""
    leads = relative_lead(scores[..., 0], scores[..., 1], Direction.LOWER)
    crowned = np.zeros(len(leads), dtype=bool)
    rounds = np.zeros(len(leads), dtype=np.int64)
    open_ = np.ones(len(leads), dtype=bool)
    per_round = rules.boss_tasks_text
    for played in range(1, rules.boss_rounds_max + 1):
        n = played * per_round
        if n < 2:
            continue
        _, lower, upper = bounds_over(leads[:, :n], rules)
        verdict = verdicts(lower, upper, rules)
        last = played == rules.boss_rounds_max
        stops = open_ & ((verdict != Verdict.UNCLEAR.value) | last)
        crowned[stops] = verdict[stops] == Verdict.CROWN.value
        rounds[stops] = played
        open_ &= ~stops
    return crowned, rounds


def decide(candidate: Candidate, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Crowned and runs spent per trial."""
    rules = candidate.rules
    if rules.boss_rule == "majority":
        return _majority(scores, rules), np.full(len(scores), 2 * scores.shape[1] * candidate.seeds)
    crowned, rounds = _paired(scores, rules)
    return crowned, 2 * rules.boss_tasks_text * rounds * candidate.seeds


def _engine_decides(candidate: Candidate, scores: np.ndarray) -> tuple[bool, int]:
    """One trial decided by decide_boss, a boss round at a time (the tournament's path)."""
    rules, per_round = candidate.rules, candidate.rules.boss_tasks_text
    rounds = []
    for start in range(0, scores.shape[0], per_round):
        chunk = scores[start : start + per_round]
        outcomes = tuple((TaskOutcome("new", float(a)), TaskOutcome("old", float(b))) for a, b in chunk)
        match = Match("boss" if not rounds else f"boss-{len(rounds) + 1}", ("new", "old"), len(chunk), 1)
        rounds.append(PlayedMatch(match, (Direction.LOWER,) * len(chunk), outcomes))
        decision = decide_boss(rounds, "new", "old", rules)
        if decision.decided:
            return decision.crowned, 2 * per_round * len(rounds) * candidate.seeds
    raise AssertionError("the engine left the boss round undecided after boss_rounds_max rounds")


def _rate(values: np.ndarray) -> dict[str, float]:
    rate = float(values.mean())
    return {"rate": rate, "se": math.sqrt(rate * (1 - rate) / len(values))}


def cell(candidate: Candidate, sigma: float, seed: int) -> dict[str, float]:
    """False and true crowns, their standard errors, and runs spent, at one run noise."""
    rng = np.random.default_rng(seed)
    tasks = candidate.rules.boss_tasks_text * (candidate.rules.boss_rounds_max if candidate.rules.boss_rule == "paired" else 1)
    out: dict[str, float] = {}
    runs = []
    for label, loss in (("false_crown", 1.0), ("true_crown", 1.0 - BETTER)):
        scores = _scores(rng, sigma, loss, tasks, candidate.seeds)
        crowned, spent = decide(candidate, scores)
        for trial in range(CHECKED_TRIALS):
            if _engine_decides(candidate, scores[trial]) != (bool(crowned[trial]), int(spent[trial])):
                raise AssertionError(f"{candidate.name}: the vectorised rule and decide_boss disagree on trial {trial}")
        rate = _rate(crowned)
        out[label], out[f"{label}_se"] = rate["rate"], rate["se"]
        out[f"runs_{'equal' if loss == 1.0 else 'better'}"] = float(spent.mean())
        runs.append(spent)
    out["runs_per_boss_round"] = float(np.concatenate(runs).mean())
    out["runs_most"] = float(max(r.max() for r in runs))
    return out


def study() -> dict[str, dict[str, dict[str, float]]]:
    """Every candidate at every run noise: {name: {"sigma_0.05": cell}}."""
    return {
        c.name: {f"sigma_{sigma:g}": cell(c, sigma, seed=100 * i + j) for j, sigma in enumerate(SIGMAS)}
        for i, c in enumerate(CANDIDATES)
    }


def table(results: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    """The trade-off table, at most 80 columns."""
    lines = [
        f"{'candidate':<44}{'noise':>6}{'false':>8}{'true':>8}{'runs':>7}{'most':>6}",
        "-" * 79,
    ]
    for c in CANDIDATES:
        for sigma in SIGMAS:
            r = results[c.name][f"sigma_{sigma:g}"]
            lines.append(f"{c.what:<44}{sigma:>6.1%}{r['false_crown']:>8.2%}{r['true_crown']:>8.2%}"
                         f"{r['runs_per_boss_round']:>7.1f}{r['runs_most']:>6.0f}")
    return lines
