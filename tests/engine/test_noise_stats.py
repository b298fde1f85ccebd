"""The noise benchmark's statistics (benchmarks/noise.py; docs/rules.md "Noise"): relative spreads
between runs and the standard error of a score over its hidden examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.noise import RunResult, relative_spread, share_standard_error, summarise, training_noise
from trainarena.engine.scores import resample_counts, resampled_scores, shares


def _run(seed: int, score: float | None, loaded: bool = False, eval_se: float | None = 0.01) -> RunResult:
    return RunResult("baseline", seed, loaded, score, eval_se if score is not None else None, 15.0, "")


def test_relative_spread_is_the_sample_std_over_the_absolute_mean():
    assert relative_spread([0.9, 1.1]) == pytest.approx(math.sqrt(0.02))
    assert relative_spread([2.0, 2.2, 2.4]) == pytest.approx(0.2 / 2.2)
    # negative scores (GRPO rewards): relative to |mean|, so the sign of the scale does not matter
    assert relative_spread([-0.9, -1.1]) == pytest.approx(relative_spread([0.9, 1.1]))
    assert relative_spread([0.5, 0.5]) == 0.0


def test_with_a_lead_unit_spreads_are_over_the_unit_whatever_the_scores_zero():
    # GRPO rewards near 0: over |mean| the spread is huge; over the reward span it is what a lead is measured in.
    assert relative_spread([0.04, 0.06]) == pytest.approx(math.sqrt(2) * 0.01 / 0.05)
    assert relative_spread([0.04, 0.06], unit=1.0) == pytest.approx(math.sqrt(2) * 0.01)
    assert relative_spread([10.04, 10.06], unit=1.0) == pytest.approx(relative_spread([0.04, 0.06], unit=1.0))
    runs = [_run(1, 0.04), _run(2, 0.06), _run(1, 0.05, loaded=True)]
    summary = summarise(runs, base_score=0.03, unit=1.0)
    assert summary["all_runs"] == pytest.approx(0.01) and summary["eval"] == pytest.approx(0.01)


def test_relative_spread_is_undefined_for_one_score_or_a_zero_mean():
    assert relative_spread([]) is None
    assert relative_spread([1.0]) is None
    assert relative_spread([-0.1, 0.1]) is None


def test_share_standard_error_of_a_mean_score_is_std_over_root_n():
    values = [0.2, 0.4, 0.9, 0.1, 0.6]
    expected = float(np.std(values, ddof=1) / math.sqrt(len(values)))
    assert share_standard_error(shares(values, len(values))) == pytest.approx(expected)
    assert share_standard_error([0.3, 0.3, 0.3]) == 0.0
    assert share_standard_error([1.0]) is None


def test_share_standard_error_matches_the_gates_bootstrap_spread():
    """Token-weighted shares (instruct, chat): the spread of the resampled scores the bootstrap gate
    computes is the standard error the benchmark reports (up to the ddof and resampling error)."""
    rng = np.random.default_rng(3)
    tokens = rng.integers(3, 40, size=200)
    losses = tokens * rng.gamma(4.0, 0.5, size=200)
    per_example = shares(losses.tolist(), float(tokens.sum()))
    bootstrap = resampled_scores(per_example, resample_counts(len(per_example), 20_000, 7))
    assert share_standard_error(per_example) == pytest.approx(float(bootstrap.std()), rel=0.03)


def test_summarise_splits_same_seed_and_across_seed_runs():
    runs = [_run(1, 1.00), _run(2, 1.20), _run(3, 0.80), _run(1, 1.02, loaded=True), _run(1, 0.98, loaded=True)]
    summary = summarise(runs, base_score=2.0)
    assert summary["runs"] == 5 and summary["failed"] == 0
    assert summary["same_seed"] == pytest.approx(relative_spread([1.00, 1.02, 0.98]))
    assert summary["across_seeds"] == pytest.approx(relative_spread([1.00, 1.20, 0.80]))
    assert summary["all_runs"] == pytest.approx(relative_spread([1.00, 1.20, 0.80, 1.02, 0.98]))
    assert summary["mean"] == pytest.approx(1.0)
    assert summary["eval"] == pytest.approx(0.01 * np.mean([1 / s for s in (1.00, 1.20, 0.80, 1.02, 0.98)]))
    # the whole spread relative to what training gained over the base model (2.0 -> 1.0)
    assert summary["all_runs_over_gain"] == pytest.approx(summary["std_all"] / 1.0)
    assert training_noise(summary) == pytest.approx(summary["across_seeds"])


def test_summarise_leaves_failed_runs_out_and_counts_them():
    runs = [_run(1, 0.07), _run(2, None), _run(1, 0.05, loaded=True), _run(1, None, loaded=True)]
    summary = summarise(runs, base_score=0.03)
    assert summary["failed"] == 2
    assert summary["same_seed"] == pytest.approx(relative_spread([0.07, 0.05]))
    assert summary["across_seeds"] is None  # one seed completed alone
    assert training_noise(summary) == pytest.approx(summary["same_seed"])


def test_summarise_of_only_failed_runs_has_no_spreads():
    summary = summarise([_run(1, None), _run(2, None)], base_score=1.0)
    assert summary["mean"] is None and summary["eval"] is None and training_noise(summary) is None
