"""benchmarks.gpu_throughput end to end in its tiny CPU mode: the house loop and transformers.Trainer
both train (the loss falls), side by side on variable- and fixed-length data, and the report carries
tokens/s, MFU and their ratio, and the evaluator against a forward pass."""

from __future__ import annotations

import json

import pytest

from benchmarks import gpu_throughput

pytestmark = pytest.mark.slow  # trains four tiny models


@pytest.fixture(scope="module")
def report(capsys_module):
    assert gpu_throughput.main(["--json", "--tiny"]) == 0
    return json.loads(capsys_module.readouterr().out)


@pytest.fixture(scope="module")
def capsys_module(request):
    """capsys for a module-scoped fixture: the benchmark runs once for every test here."""
    from _pytest.capture import CaptureFixture, SysCapture

    capture = CaptureFixture(SysCapture, request, _ispytest=True)
    capture._start()
    yield capture
    capture.close()


def test_both_loops_train_on_both_cases(report):
    assert report["tiny"] is True and report["device"] == "cpu"
    assert set(report["cases"]) == {"variable", "fixed"}
    for case in report["cases"].values():
        for loop in ("trainer", "house"):
            result = case[loop]
            assert result["trained"], (loop, result["losses"])
            assert result["losses"][-1] < result["losses"][0]
            assert result["tokens_per_s"] > 0 and result["mfu"] > 0  # no upper bound: a busy CPU measures a low peak
            assert result["steps"] == gpu_throughput.TINY.timed_steps


def test_ratios_are_the_loops_own(report):
    for case in report["cases"].values():
        expected = case["house"]["tokens_per_s"] / case["trainer"]["tokens_per_s"]
        assert case["house_over_trainer"] == pytest.approx(expected, rel=0.01)


def test_evaluator_against_a_forward_pass(report):
    evaluator = report["evaluator"]
    assert evaluator["forward_compiled"] is False  # tiny models on a CPU never compile
    assert evaluator["evaluator_tokens_per_s"] > 0 and evaluator["forward_tokens_per_s"] > 0
    assert evaluator["evaluator_over_forward"] == pytest.approx(
        evaluator["evaluator_tokens_per_s"] / evaluator["forward_tokens_per_s"], rel=0.01)
    assert report["targets"] == {"house_over_trainer_variable": 2.0, "house_mfu_fixed": 0.55, "evaluator_over_forward": 0.8}
    assert report["parameters"] > 0 and report["peak_tflops"] > 0


def test_flops_count_attention_per_sequence():
    scale = gpu_throughput.TINY
    one = gpu_throughput.flops_per_step(1000, scale, [10])
    assert one == 6 * 1000 * 10 + 12 * scale.layers * scale.hidden * 100
    assert gpu_throughput.flops_per_step(1000, scale, [10, 10]) == 2 * one
