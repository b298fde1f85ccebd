"""How a run's stored per-example values make up its task score: one combination, in one place
(docs/rules.md, "Scores and per-example values").

Every task type stores, per hidden example in hidden-file order, that example's *share* of the
score, and the score is their sum as :func:`score_of` adds them. The evaluators compute the score
with that same function, so a stored score equals ``score_of(stored per-example values)`` bit for
bit, and any test of the per-example values tests the score itself:

- instruct, chat: share_k = (cross-entropy summed over example k's scored tokens) / (scored tokens
  of the whole hidden split), so the sum is the token-weighted mean loss;
- DPO, GRPO, image: share_k = value_k / examples, so the sum is the plain mean.

A bootstrap resample (``counts[k]``: how often example k is drawn) combines the same way:
``sum_k counts[k] * share_k`` (:func:`resampled_scores`). For the mean types that is exactly the
resampled mean. For the token-weighted types the denominator stays the split's token count; the
two runs of a boss task share it (the same hidden split, the base model's tokenizer), so the sign
of a resampled lead, all the gate looks at, is that of the ratio of resampled sums
``sum counts*(loss sums) / sum counts*(tokens)``.

Evaluations stored before this form carry no ``per_example_form`` entry in their details: their
values are per-example scores (means) whose mean, for instruct and chat not even that, is the score.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

# details["per_example_form"] of an evaluation whose per-example values are shares of its score.
PER_EXAMPLE_FORM = "shares"


def shares(totals: Sequence[float], denominator: float) -> list[float]:
    """Each example's share of a score ``sum(totals) / denominator`` (token count, or examples).

    >>> shares([3.0, 1.0], 4)
    [0.75, 0.25]
    """
    if denominator <= 0:
        raise ValueError(f"shares of a score over {denominator} items: the hidden split scored nothing")
    return [total / denominator for total in totals]


def score_of(per_example: Iterable[float]) -> float:
    """The score the per-example shares make up: their correctly rounded sum (``math.fsum``, so the
    order they are stored in does not change a bit); NaN when any share is not finite.

    >>> score_of([0.1] * 10)
    1.0
    """
    values = [float(value) for value in per_example]
    if not all(math.isfinite(value) for value in values):
        return math.nan
    return math.fsum(values)


def has_shares(details: Mapping[str, Any]) -> bool:
    """Whether a stored evaluation's per-example values are shares of its score (see the docstring)."""
    return details.get("per_example_form") == PER_EXAMPLE_FORM


@lru_cache(maxsize=8)
def resample_counts(examples: int, resamples: int, seed: int) -> npt.NDArray[np.float64]:
    """How often each example is drawn in each resample (rows: resamples). Fixed by the seed, so the
    same counts serve every boss task of that length; cached read-only because it is pure."""
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(examples, np.full(examples, 1.0 / examples), size=resamples).astype(np.float64)
    counts.flags.writeable = False
    return counts


def resampled_scores(per_example: npt.ArrayLike, counts: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The score of each resample: ``per_example[..., k]`` shares, ``counts[b, k]`` draws of example k
    in resample b; returns ``[..., b]``. With every count 1 it is the score again (up to rounding:
    a dot product, not ``fsum``). Linear, so the resampled score of a difference of two runs' shares
    is the difference of their resampled scores."""
    values = np.asarray(per_example, dtype=np.float64)
    return values @ np.asarray(counts, dtype=np.float64).T
