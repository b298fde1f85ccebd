"""The evaluation child's result from per-example totals, the same for every task type: each
example's share of the score, and the score as ``engine.scores.score_of`` adds the shares, so the
stored score is exactly the combination of the stored per-example values (docs/rules.md, "Scores
and per-example values")."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from trainarena.engine.scores import PER_EXAMPLE_FORM, score_of, shares


def score_result(totals: Sequence[float], denominator: float, details: dict[str, Any], quantity: str) -> dict[str, Any]:
    """``score = sum(totals) / denominator`` as shares (``denominator``: the split's scored tokens for a
    token-weighted loss, the number of examples for a mean); a failure naming ``quantity`` when the
    score is not finite.

    >>> score_result([3.0, 1.0], 4, {}, "the loss")["per_example"]
    [0.75, 0.25]
    """
    per_example = shares(totals, denominator)
    score = score_of(per_example)
    if not math.isfinite(score):
        return {"score": None, "failure": f"{quantity} is not finite (NaN or inf)", "details": details}
    return {"score": score, "per_example": per_example, "details": details | {"per_example_form": PER_EXAMPLE_FORM}}
