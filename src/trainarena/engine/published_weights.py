"""The weight vector the platform publishes, and the u16 vector a Bittensor validator sets from it
(docs/rules.md, 'Published weights'). Pure: the stored tournament weights and a time in, a vector out.

    tournament share  ratio = 0 before hybrid_start_date, min(hybrid_cap, hybrid_start + hybrid_step * week)
                      from it (week = whole weeks since hybrid_start_date), 1 with hybrid mode off
    competitor c      ratio * sum over kinds k of share_k * tournament_k[c]
    undistributed     ratio * sum over kinds of share_k * remainder_k  (+ ratio * share_k of a kind never played)
    fallback          1 - ratio  (the incentive scheme the tournaments are replacing, as in the seed's stage 1)

``sum(weights) + undistributed + fallback == 1``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from trainarena.engine.model import TOURNAMENT_KINDS
from trainarena.engine.weights import hybrid_ratio
from trainarena.settings import WeightRules

U16_MAX = 65535  # the largest weight value a validator sets (bittensor.utils.weight_utils.U16_MAX)
_WEEK = timedelta(days=7)


@dataclass(frozen=True)
class KindWeights:
    """A finished tournament's own weights (as stored) for one kind."""

    kind: str
    tournament_id: int
    weights: Mapping[str, float]
    undistributed: float


@dataclass(frozen=True)
class PublishedWeights:
    """One published vector: every competitor of the combined tournaments, heaviest first, then by name."""

    weights: tuple[tuple[str, float], ...]
    ratio: float  # the tournament share
    week: int | None  # weeks since the hybrid schedule's start (negative before it); None: hybrid mode off
    undistributed: float
    fallback: float
    tournament_ids: tuple[int, ...]  # the combined tournaments, in TOURNAMENT_KINDS order


def hybrid_week(at: datetime, start: datetime | None) -> int | None:
    """Whole weeks from ``start`` to ``at`` (negative before it); None when hybrid mode is off."""
    return None if start is None else (at - start) // _WEEK


def tournament_share(week: int | None, rules: WeightRules) -> float:
    """The ratio of the published vector that follows the tournaments in ``week``."""
    if week is None:
        return 1.0
    return 0.0 if week < 0 else hybrid_ratio(week, rules)


def kind_shares(rules: WeightRules) -> dict[str, float]:
    return {"text": rules.text_share, "image": 1.0 - rules.text_share}


def publish(results: Sequence[KindWeights], at: datetime, rules: WeightRules) -> PublishedWeights:
    """Combine the latest tournament of each kind (at most one each) at time ``at``."""
    by_kind: dict[str, KindWeights] = {}
    for result in results:
        if result.kind not in TOURNAMENT_KINDS:
            raise ValueError(f"tournament {result.tournament_id} has kind {result.kind!r}; expected one of {TOURNAMENT_KINDS}")
        if result.kind in by_kind:
            raise ValueError(f"two {result.kind} tournaments given ({by_kind[result.kind].tournament_id} and "
                             f"{result.tournament_id}); pass the latest of each kind only")
        by_kind[result.kind] = result
    week = hybrid_week(at, rules.hybrid_start_date)
    ratio = tournament_share(week, rules)
    totals: dict[str, list[float]] = {}
    undistributed: list[float] = []
    for kind, share in kind_shares(rules).items():
        result = by_kind.get(kind)
        if result is None:
            undistributed.append(ratio * share)
            continue
        undistributed.append(ratio * share * result.undistributed)
        for name, weight in result.weights.items():
            totals.setdefault(name, []).append(ratio * share * weight)
    weights = sorted(((name, math.fsum(parts)) for name, parts in totals.items()), key=lambda item: (-item[1], item[0]))
    return PublishedWeights(
        weights=tuple(weights),
        ratio=ratio,
        week=week,
        undistributed=math.fsum(undistributed),
        fallback=1.0 - ratio,
        tournament_ids=tuple(by_kind[kind].tournament_id for kind in TOURNAMENT_KINDS if kind in by_kind),
    )


def u16_weights(values: Sequence[float]) -> list[int]:
    """Each value scaled so the largest is U16_MAX, rounded: the integers a validator sets (the convention of
    bittensor's ``convert_weights_and_uids_for_emit``; the chain divides by their sum). All zeros stay zeros."""
    bad = [value for value in values if not (math.isfinite(value) and value >= 0.0)]
    if bad:
        raise ValueError(f"weights must be finite and >= 0 to be set on chain; got {bad[:5]}")
    largest = max(values, default=0.0)
    if largest == 0.0:
        return [0 for _ in values]
    return [round(value / largest * U16_MAX) for value in values]


FALLBACK_HOLDER = "(fallback)"
REMAINDER_HOLDER = "(undistributed)"


@dataclass(frozen=True)
class U16Vector:
    """What a validator sets: one u16 per hotkey (the largest is U16_MAX), heaviest first, ties by hotkey.
    ``holders[i]`` says whom hotkey i stands for; ``left_out`` names competitors without a hotkey;
    ``unassigned`` is the weight no hotkey received (the chain, which normalises the vector, shares it
    among the hotkeys in it)."""

    hotkeys: tuple[str, ...]
    values: tuple[int, ...]
    holders: tuple[tuple[str, ...], ...]
    left_out: tuple[str, ...]
    unassigned: float


def u16_vector(
    entries: Sequence[tuple[str, str | None, float]],
    *,
    fallback: float,
    undistributed: float,
    fallback_hotkey: str | None,
    remainder_hotkey: str | None,
) -> U16Vector:
    """The u16 vector of published ``(competitor, hotkey, weight)`` entries. A competitor without a hotkey is
    left out and its weight joins the undistributed remainder; the fallback share goes to ``fallback_hotkey``
    (else with the remainder), the remainder to ``remainder_hotkey`` (else it is unassigned). Hotkeys shared
    by several competitors add up; zero weights are not sent (as bittensor does)."""
    totals: dict[str, list[float]] = {}
    holders: dict[str, list[str]] = {}

    def give(hotkey: str, holder: str, weight: float) -> None:
        totals.setdefault(hotkey, []).append(weight)
        holders.setdefault(hotkey, []).append(holder)

    left_out = [name for name, hotkey, weight in entries if hotkey is None and weight > 0.0]
    remainder = math.fsum([undistributed, *(weight for _, hotkey, weight in entries if hotkey is None)])
    for name, hotkey, weight in entries:
        if hotkey is not None and weight > 0.0:
            give(hotkey, name, weight)
    unassigned: list[float] = []
    for holder, weight, hotkey in (
        (FALLBACK_HOLDER, fallback, fallback_hotkey or remainder_hotkey),
        (REMAINDER_HOLDER, remainder, remainder_hotkey),
    ):
        if weight <= 0.0:
            continue
        if hotkey is None:
            unassigned.append(weight)
        else:
            give(hotkey, holder, weight)
    summed = sorted(((hotkey, math.fsum(parts)) for hotkey, parts in totals.items()), key=lambda item: (-item[1], item[0]))
    values = u16_weights([weight for _, weight in summed])
    kept = [(hotkey, value) for (hotkey, _), value in zip(summed, values, strict=True) if value > 0]
    return U16Vector(
        hotkeys=tuple(hotkey for hotkey, _ in kept),
        values=tuple(value for _, value in kept),
        holders=tuple(tuple(holders[hotkey]) for hotkey, _ in kept),
        left_out=tuple(left_out),
        unassigned=math.fsum(unassigned),
    )
