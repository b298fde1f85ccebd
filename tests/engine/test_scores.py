"""Per-example values are shares whose sum is the score (engine.scores), and the boss round's bootstrap
resamples them consistently with the score: properties over random per-example data (hypothesis)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from trainarena.contract import Direction
from trainarena.engine import bootstrap_win_fraction, boss_lead
from trainarena.engine.boss import boss_task
from trainarena.engine.scores import resample_counts, resampled_scores, score_of, shares
from trainarena.settings import TournamentRules

from .helpers import outcome

LOSS_SUMS = st.floats(0.0, 500.0, allow_nan=False, allow_infinity=False)
VALUES = st.floats(-50.0, 50.0, allow_nan=False, allow_infinity=False)
GATED = TournamentRules(boss_rule="majority", bootstrap_gate=True, bootstrap_resamples=400, boss_margin=0.0,
                        boss_margin_floor=0.0)


@st.composite
def token_weighted(draw):
    """Per example: (summed cross-entropy, scored tokens), as the instruct and chat evaluators measure."""
    examples = draw(st.integers(1, 30))
    counts = draw(st.lists(st.integers(1, 200), min_size=examples, max_size=examples))
    sums = [draw(LOSS_SUMS) for _ in range(examples)]
    return sums, counts


@settings(max_examples=200, deadline=None)
@given(token_weighted())
def test_the_shares_add_up_to_the_token_weighted_mean(case) -> None:
    sums, counts = case
    per_example = shares(sums, sum(counts))
    score = score_of(per_example)
    # The token-weighted mean, up to the rounding of each share (half an ulp of each, at most).
    exact = math.fsum(sums) / sum(counts)
    assert score == pytest.approx(exact, rel=1e-14, abs=1e-300)
    # The combination does not depend on the order the values are stored in, to the bit.
    shuffled = list(per_example)
    random.Random(len(sums)).shuffle(shuffled)
    assert score_of(shuffled) == score


@settings(max_examples=200, deadline=None)
@given(st.lists(VALUES, min_size=1, max_size=40))
def test_the_shares_of_a_mean_add_up_to_the_mean(values: list[float]) -> None:
    assert score_of(shares(values, len(values))) == pytest.approx(math.fsum(values) / len(values), rel=1e-12, abs=1e-12)


def test_a_share_that_is_not_finite_makes_no_score() -> None:
    assert math.isnan(score_of([0.5, math.inf, -math.inf]))
    assert math.isnan(score_of([0.5, math.nan]))
    with pytest.raises(ValueError, match="scored nothing"):
        shares([1.0], 0)


@settings(max_examples=100, deadline=None)
@given(st.lists(VALUES, min_size=1, max_size=40))
def test_drawing_every_example_once_gives_the_score_back(values: list[float]) -> None:
    per_example = shares(values, len(values))
    once = resampled_scores(per_example, np.ones((1, len(values))))
    assert once[0] == pytest.approx(score_of(per_example), rel=1e-12, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.lists(VALUES, min_size=1, max_size=40), st.integers(0, 2**32 - 1))
def test_a_resample_of_mean_shares_is_the_resampled_mean(values: list[float], seed: int) -> None:
    counts = resample_counts(len(values), 50, seed)
    by_shares = resampled_scores(shares(values, len(values)), counts)
    by_values = np.array([np.repeat(values, row.astype(int)).mean() for row in counts])
    np.testing.assert_allclose(by_shares, by_values, rtol=1e-9, atol=1e-9)


@st.composite
def paired_token_weighted(draw):
    """Two runs on one hidden split: the same token counts (the base model's tokenizer), their own
    loss sums. Integer sums keep the ratio bootstrap exact, so a tie is a tie."""
    examples = draw(st.integers(2, 25))
    counts = draw(st.lists(st.integers(1, 64), min_size=examples, max_size=examples))
    champion = draw(st.lists(st.integers(0, 300), min_size=examples, max_size=examples))
    challenger = draw(st.lists(st.integers(0, 300), min_size=examples, max_size=examples))
    return counts, champion, challenger, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=150, deadline=None)
@given(paired_token_weighted())
def test_the_gate_resamples_as_the_ratio_of_resampled_sums(case) -> None:
    """Each resample's lead, from the shares, has the sign of the lead between the two ratio estimates
    sum(draws x loss sums) / sum(draws x tokens): the gate's fraction is the ratio bootstrap's."""
    counts, champion, challenger, seed = case
    tokens = sum(counts)
    draws = resample_counts(len(counts), 200, seed)
    ratio_lead = (draws @ np.array(champion, float) - draws @ np.array(challenger, float)) / (draws @ np.array(counts, float))
    share_leads = np.array(shares(champion, tokens)) - np.array(shares(challenger, tokens))
    resampled = resampled_scores(share_leads, draws)
    decided = ratio_lead != 0  # an exact tie in the integers may round to +-1e-17 in the shares
    assert np.array_equal(np.sign(resampled[decided]), np.sign(ratio_lead[decided]))
    assert np.all(np.abs(resampled[~decided]) < 1e-12)
    assume(decided.all())
    fraction = bootstrap_win_fraction(share_leads, 200, seed)
    assert fraction == pytest.approx((ratio_lead > 0).mean(), abs=0)


@settings(max_examples=100, deadline=None)
@given(st.lists(VALUES, min_size=1, max_size=40), st.sampled_from(list(Direction)))
def test_identical_per_example_values_never_pass_the_gate(values: list[float], direction: Direction) -> None:
    """The documented fraction for a challenger identical to the champion: 0 (a resampled lead must be
    strictly above 0), so the gate never crowns a copy, whatever the margin rules."""
    per_example = shares(values, len(values))
    score = score_of(per_example)
    assert bootstrap_win_fraction(np.zeros(len(values)), 400, 5) == 0.0
    result = boss_task(0, outcome("new", score, per_example), outcome("old", score, per_example), direction, GATED)
    assert result.margin_met and result.bootstrap_win_fraction == 0.0 and not result.taken


@settings(max_examples=100, deadline=None)
@given(st.lists(VALUES, min_size=1, max_size=40), st.floats(0.01, 5.0), st.sampled_from(list(Direction)))
def test_a_challenger_better_on_every_example_wins_every_resample(values: list[float], step: float, direction: Direction) -> None:
    champion = shares(values, len(values))
    better = -step if direction == Direction.LOWER else step
    challenger = shares([v + better for v in values], len(values))
    result = boss_task(0, outcome("new", score_of(challenger), challenger), outcome("old", score_of(champion), champion),
                       direction, GATED)  # fmt: skip
    assert result.lead == pytest.approx(boss_lead(score_of(challenger), score_of(champion), direction))
    assert result.lead == pytest.approx(step, rel=1e-9, abs=1e-9)
    assert result.bootstrap_win_fraction == 1.0 and result.taken
