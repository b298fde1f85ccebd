"""An audit's judgement, pure: the noise band that repeated runs of one script on one task show
(measured from stored scores, never assumed), and the verdict on a re-run's score against the
recorded one within that band (``records.audit`` runs the audit and reads the scores)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from trainarena.contract import Direction
from trainarena.engine.comparison import lead


@dataclass(frozen=True)
class NoiseBand:
    """How far apart repeated runs of one tree on one task fall, relative to their mean, pooled over a
    task type. ``relative`` is None (unknown) when fewer than the settings' minimum runs were repeated."""

    task_type: str
    relative: float | None
    quantile: float
    runs: int  # scored runs in groups of two or more
    groups: int  # (tree, task) pairs with two or more scored runs
    pairs: int  # pairs of runs the quantile is taken over
    min_runs: int  # the runs needed for a band


def noise_band(groups: Mapping[Any, Sequence[float]], task_type: str, *, quantile: float, min_runs: int) -> NoiseBand:
    """The ``quantile`` of |a - b| / |mean| over every pair of runs within each group of repeated scores
    (groups with a zero mean have no relative spread and are left out)."""
    repeated = [list(scores) for scores in groups.values() if len(scores) > 1 and np.mean(scores) != 0]
    differences = [abs(a - b) / abs(float(np.mean(scores))) for scores in repeated for a, b in itertools.combinations(scores, 2)]
    runs = sum(len(scores) for scores in repeated)
    relative = float(np.quantile(differences, quantile)) if runs >= min_runs else None
    return NoiseBand(task_type, relative, quantile, runs, len(repeated), len(differences), min_runs)


class Verdict(StrEnum):
    CONSISTENT = "consistent"  # within the band (or the same score exactly)
    OUTSIDE = "outside the band"
    UNJUDGED = "no band to judge by"  # a difference, and no measured band for the task type
    FAILED = "the audit run failed"


@dataclass(frozen=True)
class Comparison:
    recorded: float
    new: float | None
    direction: Direction
    difference: float | None  # new - recorded
    relative: float | None  # the difference over |recorded|; None for a zero recorded score
    better: bool | None  # the new score is better in the task's direction (None: equal or no score)
    verdict: Verdict


def compare(recorded: float, new: float | None, direction: Direction, band: NoiseBand) -> Comparison:
    """The verdict on a new score against the recorded one, within ``band`` or not."""
    if new is None:
        return Comparison(recorded, None, direction, None, None, None, Verdict.FAILED)
    difference = new - recorded
    relative = None if recorded == 0 else difference / abs(recorded)
    better = None if difference == 0 else lead(new, recorded, direction) > 0
    if difference == 0:
        verdict = Verdict.CONSISTENT  # an exact reproduction is within any band
    elif band.relative is None:
        verdict = Verdict.UNJUDGED
    elif relative is not None and abs(relative) <= band.relative:
        verdict = Verdict.CONSISTENT
    else:
        verdict = Verdict.OUTSIDE
    return Comparison(recorded, new, direction, difference, relative, better, verdict)
