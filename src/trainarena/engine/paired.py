"""The statistics of the paired boss rule (docs/rules.md, 'Boss round'), over plain numbers or arrays.

Each boss task gives one *relative lead*: the challenger's lead in the task's direction over the
larger magnitude of the two scores, or over the task's own unit where it has one (a GRPO task whose
rewards declare their ranges: the weighted reward span, since a reward's zero is arbitrary). It is
antisymmetric (swapping the two players negates it) and keeps its sign for zero and negative scores;
over the larger magnitude it lies in [-2, 2], and two scores of 0 give 0.

After every boss round the mean of all relative leads so far gets a one-sided lower bound (crown when
it reaches ``boss_min_lead``) and upper bound (retain when it falls below ``boss_futility_lead``),
Student-t bounds with the spread floored at ``boss_noise_floor``. The t quantile is computed here,
exactly, from the closed-form t distribution of integer degrees of freedom, so anyone replaying a
record gets the same bound without a statistics library.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from trainarena.contract import Direction
from trainarena.engine.ranking import better_first_key
from trainarena.settings import TournamentRules


class Verdict(StrEnum):
    CROWN = "crown"
    RETAIN = "retain"
    UNCLEAR = "unclear"


def relative_lead(
    challenger: npt.ArrayLike, champion: npt.ArrayLike, direction: Direction, unit: float | None = None
) -> npt.NDArray[np.float64]:
    """The challenger's lead over ``unit`` (the task's scale) when given, else over the larger |score|
    of the two (0 where both are 0); elementwise."""
    ours, theirs = np.asarray(challenger, dtype=np.float64), np.asarray(champion, dtype=np.float64)
    lead = np.asarray(better_first_key(theirs, direction) - better_first_key(ours, direction))  # type: ignore[arg-type]
    if unit is not None:
        if not (math.isfinite(unit) and unit > 0):
            raise ValueError(f"a task's lead unit must be a finite number above 0, got {unit}")
        return lead / unit
    scale = np.maximum(np.abs(ours), np.abs(theirs))
    return np.divide(lead, scale, out=np.zeros_like(lead), where=scale > 0)


def task_lead_unit(units: Iterable[float | None], task: str) -> float | None:
    """One task's lead unit from the units its scored evaluations give: None when there are none or one
    gives none (stored before lead units existed: the task is compared over |score|, as it was then);
    ValueError, naming ``task``, when two differ.

    >>> task_lead_unit([1.0, 1.0], "t"), task_lead_unit([1.0, None], "t"), task_lead_unit([], "t")
    (1.0, None, None)
    """
    given = set(units)
    if None in given or not given:
        return None
    if len(given) > 1:
        raise ValueError(f"{task}: evaluations disagree on the lead unit {sorted(given)}")
    return given.pop()


def _t_within(theta: float, df: int) -> float:
    """P(|T| <= sqrt(df) tan(theta)) for Student's t with integer ``df`` (Abramowitz & Stegun 26.7.3-4)."""
    sine, cosine = math.sin(theta), math.cos(theta)
    term, total = 1.0, 1.0
    if df % 2 == 0:
        for k in range(1, df // 2):
            term *= cosine**2 * (2 * k - 1) / (2 * k)
            total += term
        return sine * total
    if df == 1:
        return 2 * theta / math.pi
    for k in range(1, (df - 1) // 2):
        term *= cosine**2 * (2 * k) / (2 * k + 1)
        total += term
    return 2 / math.pi * (theta + sine * cosine * total)


@lru_cache(maxsize=256)
def t_quantile(p: float, df: int) -> float:
    """The exact one-sided Student-t quantile (p > 0.5, integer df >= 1): the series above, solved by
    bisection on the angle to float precision, so a replay needs no statistics library."""
    if not 0.5 < p < 1 or df < 1:
        raise ValueError(f"t quantile needs 0.5 < p < 1 and df >= 1, got p={p}, df={df}")
    low, high = 0.0, math.pi / 2
    for _ in range(200):
        middle = (low + high) / 2
        if middle in (low, high):
            break
        low, high = (middle, high) if _t_within(middle, df) < 2 * p - 1 else (low, middle)
    return math.sqrt(df) * math.tan((low + high) / 2)


@dataclass(frozen=True)
class PairedBounds:
    mean: float
    lower: float  # one-sided lower bound at boss_confidence
    upper: float  # one-sided upper bound at boss_futility_confidence
    verdict: Verdict


def bounds_over(leads: npt.ArrayLike, rules: TournamentRules) -> tuple[npt.NDArray[np.float64], ...]:
    """(mean, lower, upper) of the relative leads along the last axis (at least 2), vectorised."""
    array = np.asarray(leads, dtype=np.float64)
    n = array.shape[-1]
    if n < 2:
        raise ValueError(f"the paired test needs at least 2 relative leads, got {n}")
    mean = array.mean(axis=-1)
    spread = np.maximum(array.std(axis=-1, ddof=1), rules.boss_noise_floor)
    error = spread / np.sqrt(n)
    lower = mean - t_quantile(rules.boss_confidence, n - 1) * error
    upper = mean + t_quantile(rules.boss_futility_confidence, n - 1) * error
    return mean, lower, upper


def verdicts(lower: npt.ArrayLike, upper: npt.ArrayLike, rules: TournamentRules) -> npt.NDArray[np.str_]:
    """Crown where the lower bound reaches boss_min_lead, else retain where the upper bound is below
    boss_futility_lead, else unclear; vectorised."""
    crown = np.asarray(lower) >= rules.boss_min_lead
    retain = ~crown & (np.asarray(upper) < rules.boss_futility_lead)
    return np.where(crown, Verdict.CROWN.value, np.where(retain, Verdict.RETAIN.value, Verdict.UNCLEAR.value))


def paired_bounds(leads: list[float], rules: TournamentRules) -> PairedBounds | None:
    """The test over one boss record's relative leads; None with fewer than 2 (nothing to test yet)."""
    if len(leads) < 2:
        return None
    mean, lower, upper = (float(x) for x in bounds_over(leads, rules))
    return PairedBounds(mean, lower, upper, Verdict(str(verdicts(lower, upper, rules))))
