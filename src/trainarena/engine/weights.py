"""Weights from a finished tournament, and the hybrid mix with a legacy vector (docs/rules.md, 'Weights').

    champion                      champion_share
    standings[1 + i], i = 0..k-1  placed_share * rank_decay**i / sum(rank_decay**j for j < k)
    undistributed                 1 - everything paid above

With no winner everything is undistributed; with nobody placed behind the champion the placed share
is undistributed. Weights are non-negative and ``sum(weights) + undistributed == 1``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from trainarena.engine.model import Finished, Weights
from trainarena.settings import WeightRules


def tournament_weights(finished: Finished, entrants: Sequence[str], rules: WeightRules) -> Weights:
    """Every entrant appears in the mapping (0.0 when unplaced), as does everyone in the standings."""
    weights = dict.fromkeys(entrants, 0.0)
    if finished.champion is None:
        return Weights(weights, 1.0)
    weights[finished.champion] = rules.champion_share
    placed = [name for name in finished.standings if name != finished.champion]
    if placed:
        decays = [rules.rank_decay**i for i in range(len(placed))]  # underflows to 0.0 far down: fine
        total = math.fsum(decays)
        for name, decay in zip(placed, decays, strict=True):
            weights[name] = rules.placed_share * decay / total
    undistributed = max(0.0, 1.0 - math.fsum(weights.values()))
    return Weights(weights, undistributed)


def hybrid_ratio(week: int, rules: WeightRules) -> float:
    """Share of the tournament in the hybrid mix: min(hybrid_cap, hybrid_start + hybrid_step * week)."""
    if week < 0:
        raise ValueError(f"week must be >= 0, got {week}")
    return min(rules.hybrid_cap, rules.hybrid_start + rules.hybrid_step * week)


def hybrid_weights(tournament: Mapping[str, float], legacy: Mapping[str, float], week: int, rules: WeightRules) -> dict[str, float]:
    """ratio * tournament + (1 - ratio) * legacy over the union of keys (a missing key counts as 0).

    To carry the undistributed remainder through the mix, pass it in ``tournament`` under the
    operator's own key (e.g. the burn key); it comes out scaled by the ratio like any other weight."""
    for label, vector in (("tournament", tournament), ("legacy", legacy)):
        bad = [k for k, v in vector.items() if not (v >= 0.0 and math.isfinite(v))]
        if bad:
            raise ValueError(f"{label} weights must be finite and >= 0; bad keys: {bad[:5]}")
    ratio = hybrid_ratio(week, rules)
    keys = dict.fromkeys([*tournament, *legacy])
    return {k: ratio * tournament.get(k, 0.0) + (1.0 - ratio) * legacy.get(k, 0.0) for k in keys}
