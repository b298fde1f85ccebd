"""A seeded simulator: latent skills in, a whole tournament out (``trainarena tournament simulate``).

Each competitor has a true loss (lower is better). On every task its score is the true loss times
``1 + noise * z`` with ``z`` standard normal, drawn from a generator seeded by (seed, round), so the
same seed replays the same tournament. The defending champion's true loss is the field's best
times ``1 - champion_edge``. ``LatentSkillPlayer`` is also the driver the tests use, with optional
failures (a failure probability and competitors that always fail) and higher-is-better scores
(the negated loss, so scores are negative: the case the boss margin must get right).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from trainarena.contract import Direction
from trainarena.engine.bracket import Replay, play_out
from trainarena.engine.model import (
    Finished,
    PlayedMatch,
    PlayedRound,
    RoundPlan,
    Stage,
    TaskOutcome,
    TournamentRecord,
    Weights,
)
from trainarena.engine.seeding import derived_rng
from trainarena.engine.weights import tournament_weights
from trainarena.settings import TournamentRules, WeightRules

SIMULATED_CHAMPION = "champion"
# Spread of true losses in the simulated field: exp(FIELD_SPREAD * N(0, 1)), about +-10%.
FIELD_SPREAD = 0.1
# Per-example scores given to each boss run when the bootstrap gate is on (a small hidden split).
SIMULATED_EXAMPLES = 64
# The most entrants a simulation plays: memory and time grow with the field (100,000 take about 5 s
# and 270 MB; 100,000,000 grew without bound until killed), ten times the benchmarked 10,000.
MAX_SIMULATED_ENTRANTS = 100_000
# Relative score noise: at 10 (1000%) a score's sign is already a coin toss; beyond, scores overflow
# to inf (1e308) and tables and JSON fill with infinities.
MAX_SIMULATED_NOISE = 10.0
# The champion's edge over the field's best: its true loss is the best times ``1 - edge``, from a hundredth
# (0.99; a loss cannot reach 0) to ten times (-9) the best, far past a certain loss either way; -inf gave
# the champion an infinite loss, "failed" on every boss task.
SIMULATED_EDGE_RANGE = (-9.0, 0.99)


@dataclass(frozen=True)
class LatentSkillPlayer:
    """Fills a round plan with seeded outcomes; a pure function of (its fields, plan)."""

    true_loss: Mapping[str, float]
    noise: float
    seed: int
    direction: Direction = Direction.LOWER
    fail_probability: float = 0.0
    always_fail: frozenset[str] = field(default_factory=frozenset)
    examples: int = 0  # per-example scores per outcome (0: none)

    def __call__(self, plan: RoundPlan) -> PlayedRound:
        slots = [(m, t, c) for m in plan.matches for t in range(m.tasks) for c in m.competitors]
        rng = derived_rng(self.seed, "play", plan.index)
        z = rng.standard_normal(len(slots))
        fails = rng.random(len(slots)) < self.fail_probability
        truth = np.fromiter((self.true_loss[c] for _, _, c in slots), float, len(slots))
        scores = truth * (1.0 + self.noise * z)
        if self.direction == Direction.HIGHER:
            scores = -scores
        per_example = self._per_example(rng, scores, slots)
        outcomes: dict[tuple[str, int], list[TaskOutcome]] = {}
        rows = zip(slots, scores.tolist(), fails.tolist(), per_example, strict=True)  # plain floats: fast loop
        for (match, task, competitor), score, failed, examples in rows:
            if failed or competitor in self.always_fail:
                outcome = TaskOutcome(competitor, None, "simulated failure")
            else:
                outcome = TaskOutcome(competitor, score, None, examples)
            outcomes.setdefault((match.match_id, task), []).append(outcome)
        played = tuple(
            PlayedMatch(m, (self.direction,) * m.tasks, tuple(tuple(outcomes[(m.match_id, t)]) for t in range(m.tasks)))
            for m in plan.matches
        )
        return PlayedRound(plan, played)

    def _per_example(self, rng: np.random.Generator, scores: np.ndarray, slots: list) -> list[tuple[float, ...]]:
        """Paired per-example scores for the boss round: a shared difficulty per example times the
        run's task score, plus independent noise, so the mean tracks the task score."""
        if not self.examples or not slots or slots[0][0].match_id != "boss":
            return [()] * len(slots)
        difficulty = np.exp(0.5 * rng.standard_normal(self.examples))
        difficulty /= difficulty.mean()
        jitter = 1.0 + 0.1 * rng.standard_normal((len(slots), self.examples))
        values = scores[:, None] * difficulty[None, :] * jitter
        return [tuple(row.tolist()) for row in values]


@dataclass(frozen=True)
class SimulationReport:
    replay: Replay  # record (with every round), per-round decisions, boss round, Finished
    weights: Weights
    true_loss: dict[str, float]

    @property
    def finished(self) -> Finished:
        assert isinstance(self.replay.next, Finished)  # play_out always plays to the end
        return self.replay.next

    @property
    def stages(self) -> tuple[Stage, ...]:
        return tuple(r.plan.stage for r in self.replay.record.rounds)


def simulated_field(entrants: int, seed: int, champion_edge: float) -> dict[str, float]:
    """True losses of ``entrants`` competitors and of the defending champion."""
    if not 0 <= entrants <= MAX_SIMULATED_ENTRANTS:
        raise ValueError(f"entrants must be from 0 to {MAX_SIMULATED_ENTRANTS:,}, got {entrants}")
    least, most = SIMULATED_EDGE_RANGE
    if not least <= champion_edge <= most:
        raise ValueError(f"champion_edge must be from {least:g} to {most:g} (a loss cannot reach 0), got {champion_edge}")
    width = max(5, len(str(entrants)))
    losses = np.exp(FIELD_SPREAD * derived_rng(seed, "skills").standard_normal(entrants))
    field_best = float(losses.min()) if entrants else 1.0
    truth = {f"e{i:0{width}d}": float(v) for i, v in enumerate(losses)}
    truth[SIMULATED_CHAMPION] = field_best * (1.0 - champion_edge)
    return truth


def simulate(
    entrants: int,
    seed: int,
    noise: float,
    champion_edge: float,
    rules: TournamentRules,
    weight_rules: WeightRules,
) -> SimulationReport:
    """Play a whole text tournament of ``entrants`` simulated competitors against a simulated champion."""
    if not 0 <= noise <= MAX_SIMULATED_NOISE:
        raise ValueError(f"noise must be from 0 to {MAX_SIMULATED_NOISE:g}, got {noise}")
    truth = simulated_field(entrants, seed, champion_edge)
    names = tuple(n for n in truth if n != SIMULATED_CHAMPION)
    player = LatentSkillPlayer(truth, noise, seed, examples=SIMULATED_EXAMPLES if rules.bootstrap_gate else 0)
    record = TournamentRecord(names, seed, rules.boss_tasks_text, SIMULATED_CHAMPION)
    result = play_out(record, rules, player)
    assert isinstance(result.next, Finished)
    weights = tournament_weights(result.next, (*names, SIMULATED_CHAMPION), weight_rules)
    return SimulationReport(result, weights, truth)
