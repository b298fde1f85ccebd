"""The workbench's statistics: relative improvement, spread over seeds, and the bootstrap interval of a
script's lead over the house reference (hypothesis for the properties, numbers for the rest)."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trainarena.contract import Direction
from trainarena.engine.comparison import lead, lead_interval, relative_improvement, seed_spread
from trainarena.engine.scores import score_of, shares

FINITE = st.floats(-100, 100, allow_nan=False, allow_infinity=False)
OPTIONS = {"confidence": 0.95, "resamples": 300, "seed": 7}


@st.composite
def comparisons(draw):
    runs = draw(st.integers(1, 5))
    examples = draw(st.integers(1, 12))
    per_example = [draw(st.lists(FINITE, min_size=examples, max_size=examples)) for _ in range(runs)]
    reference = draw(st.lists(FINITE, min_size=examples, max_size=examples))
    scores = [score_of(row) for row in per_example]  # per-example values are shares of the score
    return scores, per_example, score_of(reference), reference, draw(st.sampled_from(list(Direction)))


def test_relative_improvement_reads_the_direction() -> None:
    assert relative_improvement(2.0, 4.0, Direction.LOWER) == pytest.approx(0.5)
    assert relative_improvement(2.0, 4.0, Direction.HIGHER) == pytest.approx(-0.5)
    assert relative_improvement(-1.0, -2.0, Direction.HIGHER) == pytest.approx(0.5)  # negative rewards: no sign flip
    assert relative_improvement(1.0, 0.0, Direction.LOWER) is None


@given(st.lists(FINITE, min_size=1, max_size=20))
def test_seed_spread_brackets_the_mean(scores: list[float]) -> None:
    spread = seed_spread(scores)
    assert spread.runs == len(scores) and spread.std >= 0
    assert spread.minimum - 1e-9 <= spread.mean <= spread.maximum + 1e-9
    if len(set(scores)) == 1:
        assert spread.std == pytest.approx(0.0, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(comparisons())
def test_interval_is_ordered_and_deterministic(case) -> None:
    scores, per_example, reference, reference_per_example, direction = case
    interval = lead_interval(scores, per_example, reference, reference_per_example, direction, **OPTIONS)
    assert interval.paired
    assert interval.low is not None and interval.high is not None and interval.low <= interval.high + 1e-9
    assert interval.estimate == pytest.approx(sum(lead(s, reference, direction) for s in scores) / len(scores))
    assert interval == lead_interval(scores, per_example, reference, reference_per_example, direction, **OPTIONS)


@settings(max_examples=60, deadline=None)
@given(comparisons(), FINITE)
def test_shifting_the_script_shifts_the_interval(case, shift: float) -> None:
    """Every example better by ``shift`` (each share by shift / examples): the lead and its interval
    move by exactly that much, since every resample draws as many examples as there are."""
    scores, per_example, reference, reference_per_example, direction = case
    sign = -1 if direction == Direction.LOWER else 1
    step = [[x + sign * shift / len(row) for x in row] for row in per_example]
    moved = lead_interval([s + sign * shift for s in scores], step,
                          reference, reference_per_example, direction, **OPTIONS)  # fmt: skip
    base = lead_interval(scores, per_example, reference, reference_per_example, direction, **OPTIONS)
    assert moved.estimate == pytest.approx(base.estimate + shift, abs=1e-6)
    assert moved.low == pytest.approx(base.low + shift, abs=1e-6) and moved.high == pytest.approx(base.high + shift, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(comparisons())
def test_flipping_direction_and_sign_changes_nothing(case) -> None:
    scores, per_example, reference, reference_per_example, direction = case
    other = Direction.HIGHER if direction == Direction.LOWER else Direction.LOWER
    flipped = lead_interval([-s for s in scores], [[-x for x in row] for row in per_example], -reference,
                            [-x for x in reference_per_example], other, **OPTIONS)  # fmt: skip
    base = lead_interval(scores, per_example, reference, reference_per_example, direction, **OPTIONS)
    assert flipped.estimate == pytest.approx(base.estimate, abs=1e-9)
    assert flipped.low == pytest.approx(base.low, abs=1e-6) and flipped.high == pytest.approx(base.high, abs=1e-6)


def test_the_same_script_as_the_reference_is_within_the_noise() -> None:
    row = [1.0, 2.0, 3.0, 4.0]
    interval = lead_interval([2.5, 2.5], [row, row], 2.5, row, Direction.LOWER, **OPTIONS)
    assert interval.estimate == 0 and interval.low == interval.high == 0 and not interval.clear


def test_a_consistent_lead_is_clear_and_noise_is_not() -> None:
    reference = shares([2.0 + 0.1 * (k % 5) for k in range(200)], 200)
    better = [[x - 0.2 / 200 for x in reference] for _ in range(3)]
    clear = lead_interval([score_of(r) for r in better], better, score_of(reference), reference, Direction.LOWER, **OPTIONS)
    assert clear.clear and clear.low > 0
    noisy = lead_interval([2.0, 2.4, 1.8, 2.3], [], 2.1, [], Direction.LOWER, **OPTIONS)
    assert not noisy.paired and not noisy.clear and noisy.low < 0 < noisy.high


def test_the_interval_is_on_the_scale_of_the_score() -> None:
    """Shares of 400 examples whose leads swing +-1 (in loss units): a resample's lead is a sum of 400
    draws of +-1/400, standard deviation 1/20, so the 95 % interval is about +-0.1 around 0 (the mean
    of the shares would give +-0.1/400, an interval 400 times too narrow)."""
    examples = 400
    reference = shares([2.0] * examples, examples)
    script = shares([2.0 + (1.0 if k % 2 else -1.0) for k in range(examples)], examples)
    interval = lead_interval([score_of(script)], [script], score_of(reference), reference, Direction.LOWER, **OPTIONS)
    assert interval.paired and interval.estimate == pytest.approx(0.0, abs=1e-12)
    assert interval.low is not None and interval.high is not None
    assert -0.13 < interval.low < -0.07 and 0.07 < interval.high < 0.13


def test_one_run_without_per_example_scores_has_no_interval() -> None:
    interval = lead_interval([2.0], [], 2.5, [], Direction.LOWER, **OPTIONS)
    assert (interval.estimate, interval.low, interval.high, interval.clear) == (0.5, None, None, False)


def test_mismatched_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="one list per score"):
        lead_interval([1.0, 2.0], [[1.0]], 1.0, [1.0], Direction.LOWER, **OPTIONS)
    with pytest.raises(ValueError, match="no scores"):
        seed_spread([])
    assert math.isfinite(lead(1.0, 2.0, Direction.LOWER))


def test_two_seeds_whose_leads_share_a_sign_are_no_clear_difference_once_widened_by_the_t_interval() -> None:
    from trainarena.engine.comparison import widened_by_seeds

    bootstrap = lead_interval([0.05, 0.11], [], 0.0, [], Direction.HIGHER, confidence=0.95, resamples=2000, seed=1)
    assert bootstrap.clear  # the bootstrap over two seeds is their range: a false difference
    widened = widened_by_seeds(bootstrap, [0.05, 0.11])
    assert not widened.clear and widened.low < bootstrap.low and widened.high > bootstrap.high
    assert widened.estimate == bootstrap.estimate
    steady = widened_by_seeds(lead_interval([0.5, 0.52, 0.51, 0.5], [], 0.0, [], Direction.HIGHER, confidence=0.95,
                                            resamples=2000, seed=1), [0.5, 0.52, 0.51, 0.5])  # fmt: skip
    assert steady.clear  # a lead far above its spread stays clear
    assert widened_by_seeds(bootstrap, [0.05]) == bootstrap
