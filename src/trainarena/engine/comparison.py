"""How a script compares with a reference on one task: relative improvement, the spread of its score
over seeds, and a bootstrap confidence interval of its lead over the reference (``trainarena run``).

Pure: scores and seeds in, numbers out. A *lead* is measured in the task's direction, in score units:
positive means the script is better than the reference (lower loss, or higher reward).

The interval resamples both sources of noise a reader can see: the script's runs (seeds) and the
hidden examples. Where every run and the reference have per-example values of the same length (shares
of the score, ``engine.scores``), the examples are paired (the same resampled examples for both) and
each resample's lead is the lead between resampled scores; otherwise only the runs are resampled.
The reference is one run, so its own run-to-run noise is not in the interval (docs/workbench.md says
how large that noise is).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from trainarena.contract import Direction
from trainarena.engine.boss import boss_lead
from trainarena.engine.paired import t_quantile


def lead(score: float, reference: float, direction: Direction) -> float:
    """How far ``score`` is better than ``reference`` in ``direction`` (negative: worse): the boss
    round's lead, with the reference as the champion. Works on numpy arrays too."""
    return boss_lead(score, reference, direction)


def relative_improvement(score: float, reference: float, direction: Direction) -> float | None:
    """The lead as a share of the reference's magnitude (0.1: 10 % better); None for a zero reference."""
    if reference == 0:
        return None
    return lead(score, reference, direction) / abs(reference)


@dataclass(frozen=True)
class SeedSpread:
    """The scores of one script's runs under several seeds."""

    runs: int
    mean: float
    std: float  # sample standard deviation (n - 1); 0 for one run
    minimum: float
    maximum: float


def seed_spread(scores: Sequence[float]) -> SeedSpread:
    if not scores:
        raise ValueError("the spread of no scores: run at least one seed")
    values = np.asarray(scores, dtype=np.float64)
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return SeedSpread(len(values), float(values.mean()), std, float(values.min()), float(values.max()))


@dataclass(frozen=True)
class LeadInterval:
    """The script's mean lead over the reference, and a bootstrap interval around it (None where
    nothing can be resampled: one run without per-example scores)."""

    estimate: float
    low: float | None
    high: float | None
    confidence: float
    paired: bool  # resampled per example, paired with the reference's examples

    @property
    def clear(self) -> bool:
        """The whole interval lies on one side of zero: a difference the noise does not explain."""
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)


def _counts(rng: np.random.Generator, size: int, resamples: int) -> npt.NDArray[np.float64]:
    """Bootstrap counts (rows: resamples): how often each of ``size`` items is drawn."""
    return rng.multinomial(size, np.full(size, 1.0 / size), size=resamples).astype(np.float64)


def lead_interval(
    scores: Sequence[float],
    per_example: Sequence[Sequence[float]],
    reference: float,
    reference_per_example: Sequence[float],
    direction: Direction,
    *,
    confidence: float,
    resamples: int,
    seed: int,
) -> LeadInterval:
    """The mean lead of ``scores`` (one per run) over ``reference``, with a percentile bootstrap interval.

    Paired (see the module's docstring), each resample draws runs and examples with replacement and
    takes the runs' mean of the resampled score leads; the interval is the estimate plus the quantiles
    of how far those fall from the unresampled lead of the shares (the estimate itself is always the
    difference of the stored scores, which the shares add up to)."""
    if not scores or len(per_example) not in (0, len(scores)):
        raise ValueError(f"{len(scores)} scores with {len(per_example)} per-example lists: give one list per score, or none")
    if not 0.5 < confidence < 1:
        raise ValueError(f"confidence must be between 0.5 and 1, got {confidence}")
    leads = np.asarray([lead(score, reference, direction) for score in scores], dtype=np.float64)
    estimate = float(leads.mean())
    examples = len(reference_per_example)
    paired = examples > 0 and len(per_example) == len(scores) and all(len(row) == examples for row in per_example)
    if not paired and len(scores) == 1:
        return LeadInterval(estimate, None, None, confidence, paired=False)
    rng = np.random.default_rng(seed)
    run_weights = _counts(rng, len(scores), resamples) / len(scores)  # a resample's mean over runs
    if paired:
        matrix = np.asarray(per_example, dtype=np.float64)
        ref = np.asarray(reference_per_example, dtype=np.float64)
        example_leads = lead(matrix, ref, direction)
        example_counts = _counts(rng, examples, resamples)
        resampled = np.einsum("br,rk,bk->b", run_weights, example_leads, example_counts)
        deviations = resampled - example_leads.sum(axis=1).mean()
    else:
        deviations = run_weights @ leads - estimate
    tail = (1 - confidence) / 2
    low, high = np.quantile(deviations, [tail, 1 - tail])
    return LeadInterval(estimate, estimate + float(low), estimate + float(high), confidence, paired)



def widened_by_seeds(interval: LeadInterval, seed_leads: Sequence[float]) -> LeadInterval:
    """``interval`` widened to hold the Student-t interval of the mean of ``seed_leads`` (one lead per
    seed, each run paired with the reference's run of that seed) at the same confidence. A percentile
    bootstrap over a handful of seeds is about their range: two seeds whose leads share a sign would read
    as a clear difference half the time between two copies of one script. The t interval is honest at
    small counts (at 2 seeds and 95% its half-width is 12.7 standard errors). Fewer than 2 leads: as is."""
    if len(seed_leads) < 2 or interval.low is None or interval.high is None:
        return interval
    leads = np.asarray(seed_leads, dtype=np.float64)
    half = t_quantile((1 + interval.confidence) / 2, len(leads) - 1) * float(leads.std(ddof=1)) / math.sqrt(len(leads))
    mean = float(leads.mean())
    return LeadInterval(interval.estimate, min(interval.low, mean - half), max(interval.high, mean + half),
                        interval.confidence, interval.paired)  # fmt: skip
