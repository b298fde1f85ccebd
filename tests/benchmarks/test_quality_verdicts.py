"""The quality benchmark's verdict rules (benchmarks/quality_verdicts.py), its contender roster, and
one end-to-end run of ``python -m benchmarks.quality --json`` on the cached assets."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.quality import main as quality_command
from benchmarks.quality_runs import ADVERSARIAL_EXAMPLES, DPO_TASKS, contenders, honest_examples, task_names
from benchmarks.quality_verdicts import (
    defaults_gain_verdict,
    defaults_ratio_verdict,
    example_verdict,
    mean_over_tasks,
    summarize,
)
from trainarena.assets.synthetic_types import TYPED_DATASETS

REPO_ROOT = Path(__file__).resolve().parents[2]
losses = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False)
seed_losses = st.dictionaries(st.integers(0, 50), losses, min_size=1, max_size=6)


def test_summary_over_seeds_skips_failed_runs():
    summary = summarize({1: 2.0, 2: 4.0, 3: None})
    assert (summary.mean, summary.low, summary.high, summary.n, summary.seeds) == (3.0, 2.0, 4.0, 2, 3)
    assert summary.sd == pytest.approx(2 ** 0.5)
    assert summarize({1: 5.0}).sd == 0.0
    assert summarize({1: None}).mean is None


def test_ratio_verdict_reports_mean_and_worst_seed():
    verdict = defaults_ratio_verdict("t", "defaults", house={1: 1.0, 2: 1.0}, defaults={1: 1.5, 2: 1.1})
    assert verdict.measure == pytest.approx(1.3) and verdict.worst == pytest.approx(1.1)
    assert verdict.met and not verdict.every_seed and (verdict.seeds_met, verdict.seeds) == (1, 2)


def test_a_failed_house_run_fails_the_ratio_verdict_even_with_a_good_mean():
    verdict = defaults_ratio_verdict("t", "defaults", house={1: 1.0, 2: None}, defaults={1: 2.0, 2: 2.0})
    assert not verdict.met and "house failed on seed 2" in verdict.note


def test_a_failed_defaults_run_counts_as_a_house_win_on_that_seed():
    verdict = defaults_ratio_verdict("t", "defaults", house={1: 1.0, 2: 1.0}, defaults={1: 2.0, 2: None})
    assert verdict.met and verdict.every_seed and verdict.measure == 2.0


@given(seed_losses, st.randoms(use_true_random=False))
def test_ratio_verdict_does_not_depend_on_seed_order(house, shuffler):
    defaults = {seed: loss * 1.2 for seed, loss in house.items()}
    order = list(house)
    shuffler.shuffle(order)
    shuffled = defaults_ratio_verdict("t", "d", {s: house[s] for s in order}, {s: defaults[s] for s in order})
    assert shuffled == defaults_ratio_verdict("t", "d", house, defaults)


@given(seed_losses)
def test_a_house_equal_to_the_defaults_never_passes_the_15_percent_rule(house):
    verdict = defaults_ratio_verdict("t", "d", house, dict(house))
    assert not verdict.met and verdict.seeds_met == 0 and verdict.measure == pytest.approx(1.0)


@given(seed_losses, st.floats(min_value=1.0, max_value=1.149))
def test_a_house_less_than_15_percent_better_on_every_seed_misses(house, factor):
    assert not defaults_ratio_verdict("t", "d", house, {s: v * factor for s, v in house.items()}).met


def test_gain_rule_needs_three_times_the_defaults_gain():
    base = {1: 0.1, 2: 0.1}
    assert defaults_gain_verdict("g", "d", {1: 0.4, 2: 0.4}, {1: 0.2, 2: 0.2}, base).met  # 0.3 vs 0.1: 3x
    missed = defaults_gain_verdict("g", "d", {1: 0.3, 2: 0.3}, {1: 0.2, 2: 0.2}, base)  # 0.2 vs 0.1: 2x
    assert not missed.met and missed.measure == pytest.approx(2.0)


def test_gain_rule_when_the_defaults_gain_nothing_needs_a_margin_above_the_seed_spread():
    base = {1: 0.5, 2: 0.5, 3: 0.5}
    steady = defaults_gain_verdict("g", "d", {1: 0.6, 2: 0.6, 3: 0.6}, {1: 0.5, 2: 0.49, 3: 0.5}, base)
    assert steady.met and steady.measure is None and "ratio undefined" in steady.note
    # The same mean gain (+0.1) but one seed lost: the spread of house - defaults swamps the margin.
    noisy = defaults_gain_verdict("g", "d", {1: 0.9, 2: 0.4, 3: 0.5}, {1: 0.5, 2: 0.49, 3: 0.5}, base)
    assert not noisy.met
    assert not defaults_gain_verdict("g", "d", {1: 0.4}, {1: 0.3}, {1: 0.5}).met  # the house lost reward


def test_a_defaults_gain_within_its_noise_cannot_flip_the_gain_verdict():
    """Defaults' mean gain +0.00015 or -0.00015 (sd 0.001 over 3 seeds: both inside its standard
    error) is the same noise: neither side gives a ratio, and a house whose own gain is inside the seed
    spread fails both (the rule before this passed it at +0.00015 on 0.0018 >= 3 x 0.00015)."""
    base = {1: 0.0, 2: 0.0, 3: 0.0}
    house = {1: 0.009, 2: -0.004, 3: 0.0005}  # mean +0.0018, sd 0.0065
    above, below = {1: 0.00115, 2: -0.00085, 3: 0.00015}, {1: 0.00085, 2: -0.00115, 3: -0.00015}
    verdicts = [defaults_gain_verdict("g", "d", house, defaults, base) for defaults in (above, below)]
    assert [v.met for v in verdicts] == [False, False]
    assert [v.measure for v in verdicts] == [None, None]
    assert all("within its standard error" in v.note for v in verdicts)
    # A clear house gain passes against both alike.
    strong = {1: 0.012, 2: 0.010, 3: 0.011}
    assert all(defaults_gain_verdict("g", "d", strong, defaults, base).met for defaults in (above, below))


def test_a_real_defaults_gain_needs_three_times_it_and_the_seed_spread():
    base = {1: 0.0, 2: 0.0, 3: 0.0}
    defaults = {1: 0.010, 2: 0.011, 3: 0.012}  # +0.011, standard error 0.0006: real
    met = defaults_gain_verdict("g", "d", {1: 0.034, 2: 0.033, 3: 0.035}, defaults, base)
    assert met.met and met.measure == pytest.approx(3.0909, rel=1e-3)
    # 3.1x in the mean, but one seed below the defaults: the difference's spread swamps the margin.
    noisy = defaults_gain_verdict("g", "d", {1: 0.070, 2: 0.0, 3: 0.032}, defaults, base)
    assert noisy.measure == pytest.approx(3.0909, rel=1e-3) and not noisy.met


gains = st.lists(st.floats(min_value=-0.05, max_value=0.05, allow_nan=False), min_size=2, max_size=6)


@given(gains, gains)
def test_a_house_gain_within_the_seed_spread_of_the_defaults_never_passes(defaults_gains, differences):
    n = min(len(defaults_gains), len(differences))
    defaults_gains, differences = defaults_gains[:n], differences[:n]
    base = dict.fromkeys(range(n), 0.5)
    defaults = {s: 0.5 + g for s, g in enumerate(defaults_gains)}
    house = {s: 0.5 + g + d for s, (g, d) in enumerate(zip(defaults_gains, differences, strict=True))}
    verdict = defaults_gain_verdict("g", "d", house, defaults, base)
    mean_gap = statistics.fmean(house[s] - defaults[s] for s in range(n))
    spread = statistics.stdev(house[s] - defaults[s] for s in range(n))
    if mean_gap <= spread:
        assert not verdict.met
    # The ratio only when the defaults' gain is above its own standard error, and a met verdict with a
    # ratio has reached the target.
    other = [defaults[s] - base[s] for s in range(n)]
    real = statistics.fmean(other) > statistics.stdev(other) / math.sqrt(n)
    assert (verdict.measure is not None) == real
    if verdict.met and real:
        assert verdict.measure >= 3.0 * (1 - 1e-9)
    if verdict.met and not real:
        assert verdict.house_gain > 0


@given(seed_losses)
def test_a_house_that_matches_an_example_is_at_least_as_good(house):
    assert example_verdict("t", "e", house, dict(house), lower_is_better=True).met


def test_example_verdict_follows_the_task_direction():
    house, example = {1: 1.0, 2: 3.0}, {1: 2.0, 2: 2.5}  # means 2.0 vs 2.25
    lower = example_verdict("t", "e", house, example, lower_is_better=True)
    assert lower.met and (lower.seeds_met, lower.seeds) == (1, 2)
    assert not example_verdict("t", "e", house, example, lower_is_better=False).met


def test_mean_over_tasks_is_per_seed_and_fails_with_any_task():
    assert mean_over_tasks([{1: 1.0, 2: 2.0}, {1: 3.0, 2: None}]) == {1: 2.0, 2: None}


def test_contenders_are_house_defaults_then_honest_examples_without_adversarial_ones():
    names = [c.name for c in contenders("instruct", None)]
    assert names[:2] == ["baseline", "trl_defaults"]
    assert {"hotlr", "torchloop", "lowrank", "instruct_only"} <= set(names[2:])
    assert not ADVERSARIAL_EXAMPLES & set(names)
    assert [c.name for c in contenders("image", ["image_fewsteps"])] == ["image_baseline", "image_defaults", "image_fewsteps"]
    assert honest_examples("dpo") == []  # no shipped example but the house declares dpo


def test_dpo_plays_every_dpo_dataset_of_the_assets():
    assert task_names("dpo", text_assets=None) == list(DPO_TASKS)
    assert set(DPO_TASKS) == {d.name for d in TYPED_DATASETS if d.task_type == "dpo"}


def test_the_command_rejects_a_script_that_is_not_an_honest_example_of_the_types(capsys):
    with pytest.raises(SystemExit) as exit_info:
        quality_command(["--types", "dpo", "--scripts", "hostile"])
    assert exit_info.value.code == 2
    assert "['hostile'] are not honest examples of dpo" in capsys.readouterr().err


def test_plays_at_once_need_the_cpu_clock(capsys):
    with pytest.raises(SystemExit) as exit_info:
        quality_command(["--types", "instruct", "--parallel", "2"])
    assert exit_info.value.code == 2
    assert "--parallel above 1 needs --clock cpu" in capsys.readouterr().err


def test_end_to_end_json_on_a_tiny_budget(assets):
    """The command as the tuners run it, narrowed: instruct with one honest example, one seed, on the
    CPU clock (a wall-clock budget this short leaves a loaded machine nothing to train with), its two
    tasks played at once (the CPU clock gives each script its budget whatever else runs)."""
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.quality", "--types", "instruct", "--scripts", "instruct_only",
         "--seeds", "1", "--budget", "6", "--clock", "cpu", "--parallel", "2", "--json", "--assets-dir", str(assets.root.parent)],
        cwd=REPO_ROOT, capture_output=True, text=True, env=_env(), timeout=560)
    assert result.returncode == 0, result.stderr[-2000:]
    document = json.loads(result.stdout)
    assert document["seeds"] == [1] and document["clock"] == "cpu" and set(document["types"]) == {"instruct"}
    instruct = document["types"]["instruct"]
    assert instruct["contenders"] == {"baseline": "house", "trl_defaults": "defaults", "instruct_only": "example"}
    assert set(instruct["tasks"]) == {"arithmetic", "strings"}
    for entry in document["types"].values():
        for task in entry["tasks"].values():
            assert isinstance(task["base"]["1"], float)
            for run in task["runs"]:
                # A run the loaded CPU cut short is reported failed with its reason, never dropped.
                assert isinstance(run["score"], float) or (run["score"] is None and run["failure"])
        assert {v["rule"] for v in entry["verdicts"]} <= {"defaults_ratio", "example"}
        assert all(isinstance(v["met"], bool) for v in entry["verdicts"])
    assert len(instruct["verdicts"]) == 4  # per task: vs defaults, vs instruct_only
    scored = [run for entry in document["types"].values() for task in entry["tasks"].values() for run in task["runs"]
              if run["score"] is not None]
    assert scored, "no run produced a score"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "src"), str(REPO_ROOT)])}
