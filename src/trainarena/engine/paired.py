"""The statistics of the paired boss rule (docs/rules.md, 'Boss round'), over plain numbers or arrays.

Each boss task gives one *relative lead*: the challenger's lead in the task's direction over the
larger magnitude of the two scores. It is antisymmetric (swapping the two players negates it), keeps
its sign for zero and negative scores (GRPO rewards), and lies in [-2, 2]; two scores of 0 give 0.

After every boss round the mean of all relative leads so far gets a one-sided lower bound (crown when
it reaches ``boss_min_lead``) and upper bound (retain when it falls below ``boss_futility_lead``),
Student-t bounds with the spread floored at ``boss_noise_floor``. The t quantile is the four-term
Cornish-Fisher expansion (Abramowitz & Stegun 26.7.5), written out here so that anyone replaying a
record gets the same bound without a statistics library; the benchmark measures the rule as written.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from trainarena.contract import Direction
from trainarena.engine.ranking import better_first_key
from trainarena.settings import TournamentRules


class Verdict(StrEnum):
    CROWN = "crown"
    RETAIN = "retain"
    UNCLEAR = "unclear"


def relative_lead(challenger: npt.ArrayLike, champion: npt.ArrayLike, direction: Direction) -> npt.NDArray[np.float64]:
    """The challenger's lead over the larger |score| of the two (0 where both are 0); elementwise."""
    ours, theirs = np.asarray(challenger, dtype=np.float64), np.asarray(champion, dtype=np.float64)
    lead = np.asarray(better_first_key(theirs, direction) - better_first_key(ours, direction))  # type: ignore[arg-type]
    scale = np.maximum(np.abs(ours), np.abs(theirs))
    return np.divide(lead, scale, out=np.zeros_like(lead), where=scale > 0)


def t_quantile(p: float, df: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Student-t quantile by the Cornish-Fisher expansion. Against the exact quantile: 2.895 for
    2.896 (p 0.99, df 8), 2.977 for 2.977 (0.995, 14), 4.010 for 4.032 (0.995, 5); at df 2 it is
    smaller, so less strict (8.76 for 9.92 at 0.995), which the benchmark's rates include."""
    z = NormalDist().inv_cdf(p)
    v = np.asarray(df, dtype=np.float64)
    return (
        z
        + (z**3 + z) / (4 * v)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
    )


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
