"""The pure part of the quality benchmark: scores over seeds summarised, and issue 17 part 3's verdict
rules, with no I/O (``benchmarks.quality`` runs the scripts and prints; the tests call these directly).

Scores are keyed by seed; ``None`` is a run that failed (or could not be evaluated). The rules:

- house vs defaults, lower-is-better types: per seed the ratio defaults / house (above 1: the house is
  better); OK when the mean over seeds is at least ``DEFAULTS_RATIO_TARGET`` (>= 15% better).
- house vs defaults, higher-is-better types (GRPO reward): the gain over the base model, per seed.
  Always: OK only when the house's mean gain exceeds the defaults' by more than the seed spread (the
  sample standard deviation over seeds of house gain - defaults gain; 0 with a single seed), so noise
  alone never passes. When the defaults' mean gain exceeds its own standard error (sd of their gains
  over sqrt(seeds); 0 with a single seed) the gain is real and the ratio house / defaults (of the
  means) must also reach ``GAIN_RATIO_TARGET``; otherwise the ratio means nothing (it is not
  reported: a defaults' gain of +0.00015 or -0.00015 is the same noise) and the house's mean gain
  must be positive.
- house vs each honest example: OK when the house is at least as good in the mean over seeds; wins
  per seed count ties as wins.

Everywhere, a seed on which the house failed fails the verdict (OK needs the house to run every
seed); a seed on which only the other side failed counts as a house win and stays out of the means.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

DEFAULTS_RATIO_TARGET = 1.15  # part 3: the house >= 15% better than the library defaults
GAIN_RATIO_TARGET = 3.0  # part 3, GRPO: a reward gain at least 3x the defaults'

Scores = dict[int, float | None]  # seed -> score, None: the run failed


@dataclass(frozen=True)
class Summary:
    """One contender on one task over the seeds that produced a score."""

    mean: float | None
    sd: float | None  # sample standard deviation; 0.0 with one score
    low: float | None
    high: float | None
    n: int  # seeds with a score
    seeds: int  # seeds tried


def summarize(scores: Scores) -> Summary:
    values = [v for v in scores.values() if v is not None]
    if not values:
        return Summary(None, None, None, None, 0, len(scores))
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return Summary(statistics.fmean(values), sd, min(values), max(values), len(values), len(scores))


def mean_over_tasks(per_task: list[Scores]) -> Scores:
    """Per seed, the mean of the tasks' scores (None when any task's run failed on that seed)."""
    seeds = sorted(set().union(*per_task)) if per_task else []
    combined: Scores = {}
    for seed in seeds:
        values = [scores.get(seed) for scores in per_task]
        combined[seed] = None if any(v is None for v in values) else statistics.fmean(values)
    return combined


@dataclass(frozen=True)
class Verdict:
    """One comparison of the house with another contender on one task (or the mean of a type's tasks)."""

    rule: str  # "defaults_ratio", "defaults_gain" or "example"
    task: str
    other: str  # the contender the house is compared with
    met: bool
    every_seed: bool  # the per-seed version of the rule held on every seed
    seeds_met: int
    seeds: int
    measure: float | None  # the ratio (mean), the gain ratio, or the house's mean score
    worst: float | None  # min ratio over seeds; the other's mean score for "example"; None otherwise
    house_gain: float | None = None  # "defaults_gain" only: mean gains over the base model
    other_gain: float | None = None
    note: str = ""


def defaults_ratio_verdict(task: str, other: str, house: Scores, defaults: Scores,
                           target: float = DEFAULTS_RATIO_TARGET) -> Verdict:
    """Lower is better: defaults / house per seed, OK when the mean ratio reaches ``target``."""
    seeds = sorted(set(house) | set(defaults))
    ratios = [_ratio(defaults[s], house[s]) for s in seeds if _both(house, defaults, s)]
    per_seed = [_house_wins_alone(house, defaults, s) or (_both(house, defaults, s) and _ratio(defaults[s], house[s]) >= target)
                for s in seeds]
    house_ran = all(house.get(s) is not None for s in seeds)
    mean = statistics.fmean(ratios) if ratios else None
    met = house_ran and bool(seeds) and (mean >= target if mean is not None else all(per_seed))
    return Verdict("defaults_ratio", task, other, met, all(per_seed), sum(per_seed), len(seeds), mean,
                   min(ratios) if ratios else None, note=_failures(house, defaults, seeds, other))


def defaults_gain_verdict(task: str, other: str, house: Scores, defaults: Scores, base: Scores,
                          target: float = GAIN_RATIO_TARGET) -> Verdict:
    """Higher is better: the house's gain over the base model against the defaults' (see the module
    docstring for the rule when the defaults gain nothing)."""
    seeds = sorted(set(house) | set(defaults))
    paired = [s for s in seeds if _both(house, defaults, s) and base.get(s) is not None]
    house_gains = [house[s] - base[s] for s in paired]
    other_gains = [defaults[s] - base[s] for s in paired]
    per_seed = [_gain_met(house[s] - base[s], defaults[s] - base[s], target, margin=0.0) if s in paired
                else _house_wins_alone(house, defaults, s) for s in seeds]
    house_ran = all(house.get(s) is not None for s in seeds)
    if not paired:
        return Verdict("defaults_gain", task, other, house_ran and bool(seeds) and all(per_seed), all(per_seed),
                       sum(per_seed), len(seeds), None, None, note=_failures(house, defaults, seeds, other))
    house_gain, other_gain = statistics.fmean(house_gains), statistics.fmean(other_gains)
    spread = statistics.stdev(h - o for h, o in zip(house_gains, other_gains, strict=True)) if len(paired) > 1 else 0.0
    noise = statistics.stdev(other_gains) / math.sqrt(len(paired)) if len(paired) > 1 else 0.0
    real = other_gain > noise
    ratio = house_gain / other_gain if real else None
    note = (f"needs house gain >= {target:g}x defaults gain and > defaults gain + {spread:.4g} (seed sd)" if real else
            f"defaults gain {other_gain:+.4g} within its standard error {noise:.4g}: ratio undefined, "
            f"needs house gain > 0 and > defaults gain + {spread:.4g} (seed sd)")
    met = house_ran and _gain_met(house_gain, other_gain, target, margin=spread, noise=noise)
    return Verdict("defaults_gain", task, other, met, all(per_seed), sum(per_seed), len(seeds), ratio, None,
                   house_gain, other_gain, "; ".join(filter(None, [note, _failures(house, defaults, seeds, other)])))


def example_verdict(task: str, other: str, house: Scores, example: Scores, lower_is_better: bool) -> Verdict:
    """The house at least as good as an honest example in the mean over the seeds both ran."""
    seeds = sorted(set(house) | set(example))
    paired = [s for s in seeds if _both(house, example, s)]
    sign = 1.0 if lower_is_better else -1.0
    per_seed = [_house_wins_alone(house, example, s) or (_both(house, example, s) and sign * (house[s] - example[s]) <= 0)
                for s in seeds]
    house_ran = all(house.get(s) is not None for s in seeds)
    house_mean = statistics.fmean(house[s] for s in paired) if paired else None
    other_mean = statistics.fmean(example[s] for s in paired) if paired else None
    met = house_ran and bool(seeds) and (sign * (house_mean - other_mean) <= 0 if paired else all(per_seed))
    return Verdict("example", task, other, met, all(per_seed), sum(per_seed), len(seeds), house_mean, other_mean,
                   note=_failures(house, example, seeds, other))


def _gain_met(house_gain: float, other_gain: float, target: float, margin: float, noise: float = 0.0) -> bool:
    """The gain rule (module docstring): above the defaults by more than ``margin`` (the seed spread)
    always; ``target`` times their gain when it exceeds ``noise`` (its standard error), else positive."""
    if house_gain - other_gain <= margin:
        return False
    if other_gain > noise:
        return house_gain >= target * other_gain
    return house_gain > 0


def _ratio(other: float, house: float) -> float:
    """other / house, with a perfect house (0 loss) infinitely better unless the other is perfect too."""
    if house == 0:
        return 1.0 if other == 0 else math.inf
    return other / house


def _both(a: Scores, b: Scores, seed: int) -> bool:
    return a.get(seed) is not None and b.get(seed) is not None


def _house_wins_alone(house: Scores, other: Scores, seed: int) -> bool:
    return house.get(seed) is not None and other.get(seed) is None


def _failures(house: Scores, other: Scores, seeds: list[int], other_name: str) -> str:
    failed = [f"{side} failed on seed {s}" for s in seeds for side, scores in (("house", house), (other_name, other))
              if scores.get(s) is None]
    return "; ".join(failed)
