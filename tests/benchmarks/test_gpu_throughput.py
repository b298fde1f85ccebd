"""benchmarks.gpu_throughput end to end in its tiny CPU mode: the house loop and transformers.Trainer
both train (the loss falls) on the same steps, side by side on variable- and fixed-length data, and the
report carries tokens/s, MFU and their ratio, the speed-ups each loop ran, the evaluator against a
forward pass, and a verdict per target; and its FLOP count, without the input embedding."""

from __future__ import annotations

import json

import pytest

from benchmarks import gpu_throughput

torch = pytest.importorskip("torch")


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


@pytest.mark.slow  # trains four tiny models
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


@pytest.mark.slow
def test_both_loops_time_the_same_steps(report):
    """The Trainer takes the house's batches in the house's order: the same real tokens per timed step,
    and on the CPU (fp32 both) the same loss curve."""
    for case in report["cases"].values():
        trainer, house = case["trainer"], case["house"]
        assert trainer["step_tokens"] == house["step_tokens"] and len(house["step_tokens"]) == gpu_throughput.TINY.timed_steps
        assert trainer["losses"] == pytest.approx(house["losses"], rel=1e-3)
    variable = report["cases"]["variable"]["house"]["step_tokens"]
    assert len(set(variable)) > 1  # lengths do vary


@pytest.mark.slow
def test_each_loop_says_what_ran(report):
    for case in report["cases"].values():
        # On the CPU the house packs and nothing else: no varlen kernel, no compilation, no Liger, no fallback.
        assert case["house"]["speedups"] == {"packed": True, "varlen": False, "compiled": False, "liger": False,
                                             "eager_from_step": None, "error": None}
        assert case["trainer"]["speedups"] == {"attention": "sdpa", "bf16_autocast": False, "padded": True, "compiled": False}


@pytest.mark.slow
def test_every_target_has_a_verdict(report):
    verdicts = report["verdicts"]
    assert set(verdicts) == set(gpu_throughput.TARGETS)
    assert verdicts["house_over_trainer_variable"]["value"] == report["cases"]["variable"]["house_over_trainer"]
    assert verdicts["house_mfu_fixed"]["value"] == report["cases"]["fixed"]["house"]["mfu"]
    assert verdicts["evaluator_over_forward"]["value"] == report["evaluator"]["evaluator_over_forward"]
    for name, verdict in verdicts.items():
        assert verdict["target"] == gpu_throughput.TARGETS[name]
        assert verdict["met"] is (verdict["value"] >= verdict["target"])


@pytest.mark.slow
def test_ratios_are_the_loops_own(report):
    for case in report["cases"].values():
        expected = case["house"]["tokens_per_s"] / case["trainer"]["tokens_per_s"]
        assert case["house_over_trainer"] == pytest.approx(expected, rel=0.01)


@pytest.mark.slow
def test_evaluator_against_a_forward_pass(report):
    evaluator = report["evaluator"]
    assert evaluator["forward_compiled"] is False  # tiny models on a CPU never compile
    assert evaluator["evaluator_tokens_per_s"] > 0 and evaluator["forward_tokens_per_s"] > 0
    assert evaluator["evaluator_over_forward"] == pytest.approx(
        evaluator["evaluator_tokens_per_s"] / evaluator["forward_tokens_per_s"], rel=0.01)
    assert report["targets"] == {"house_over_trainer_variable": 2.0, "house_mfu_fixed": 0.55, "evaluator_over_forward": 0.8}
    assert report["parameters"] > 0 and report["peak_tflops"] > 0
    scale = gpu_throughput.TINY
    assert report["flop_parameters"] == report["parameters"] - scale.vocab * scale.hidden
    assert "input embedding" in report["flops_convention"]


def test_flops_count_attention_per_sequence():
    scale = gpu_throughput.TINY
    one = gpu_throughput.flops_per_step(1000, scale, [10])
    assert one == 6 * 1000 * 10 + 12 * scale.layers * scale.hidden * 100
    assert gpu_throughput.flops_per_step(1000, scale, [10, 10]) == 2 * one


def test_flops_leave_out_the_input_embedding_only():
    """The input embedding is a lookup: at the full scale counting it made every MFU 7.4% too high."""
    scale = gpu_throughput.FULL
    model = gpu_throughput.build_model(scale, 0, "meta", torch.float32)
    counted = gpu_throughput.flop_parameters(model)
    assert counted == model.num_parameters() - scale.vocab * scale.hidden  # the untied LM head stays
    lengths = [scale.max_length] * scale.batch
    too_high = gpu_throughput.flops_per_step(model.num_parameters(), scale, lengths) / gpu_throughput.flops_per_step(counted, scale, lengths)
    assert too_high == pytest.approx(1.074, abs=0.001)


def test_the_printed_report_gives_each_verdict_and_a_fallback(capsys):
    loop = {"tokens_per_s": 100, "mfu": 0.5, "losses": [2.0, 1.0]}
    house = loop | {"speedups": {"packed": True, "varlen": True, "compiled": True, "liger": False, "eager_from_step": 0,
                                 "error": "RuntimeError: boom"}}
    trainer = loop | {"speedups": {"attention": "sdpa", "bf16_autocast": True, "padded": True, "compiled": False}}
    report = {"device": "H200", "parameters": 10, "flop_parameters": 8, "peak_tflops": 790.0, "tiny": False,
              "cases": {"variable": {"trainer": trainer, "house": house, "house_over_trainer": 2.5},
                        "fixed": {"trainer": trainer, "house": house | {"mfu": 0.5}, "house_over_trainer": 1.0}},
              "evaluator": {"evaluator_tokens_per_s": 9, "forward_tokens_per_s": 10, "forward_compiled": True,
                            "evaluator_over_forward": 0.9}}
    report["verdicts"] = gpu_throughput.verdicts(report)
    assert {name: v["met"] for name, v in report["verdicts"].items()} == {
        "house_over_trainer_variable": True, "house_mfu_fixed": False, "evaluator_over_forward": True}
    gpu_throughput.print_report(report)
    out = capsys.readouterr().out
    assert "house ran: packed, varlen, compiled; fell back to eager from step 0 (RuntimeError: boom)" in out
    assert "house MFU, fixed length: 0.5 >= 0.55: NOT met" in out
    assert "house / Trainer tokens/s, variable lengths: 2.5 >= 2: met" in out
