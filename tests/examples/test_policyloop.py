"""The pieces of the house DPO and GRPO loops (examples/competitors/baseline/policyloop.py, dpo.py,
grpo.py) on a tiny LLaMA built from a config: packed completion log-probs equal the scorer's, per
sequence and per sampling temperature, and carry gradients; the SFT phase's loss is the chosen answers'
NLL per token; the held-out scaling picks the scale of lowest DPO loss (past the trained weights when
their margins are right but timid) and moves the weights that fraction of the way from the base, for a
full model and for LoRA; GRPO's advantages are the centred weights toward base * exp(R / kl_coef), and
its held-out guard picks the fraction of highest score, whatever fraction the weights were at before."""

from __future__ import annotations

import copy
import importlib
import math
import random
import signal
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

HOUSE = Path(__file__).resolve().parents[2] / "examples" / "competitors" / "baseline"
VOCAB = 300


@pytest.fixture(scope="module")
def house():
    """The house modules, imported as the script imports them (by name, from its own folder)."""
    sys.path.insert(0, str(HOUSE))
    try:
        yield {name: importlib.import_module(name) for name in ("policyloop", "dpo", "grpo")}
    finally:
        sys.path.remove(str(HOUSE))
        for name, module in list(sys.modules.items()):
            if str(getattr(module, "__file__", "") or "").startswith(str(HOUSE)):
                del sys.modules[name]


def tiny_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    model = LlamaForCausalLM(config)
    model.set_attn_implementation("sdpa")
    return model.eval()


def shifted_copy(base):
    """A copy of ``base`` with 1 added to every weight: each moved weight's fraction is readable."""
    model = copy.deepcopy(base)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1.0)
    return model


def sequences(count: int = 12) -> list[tuple[list[int], int]]:
    rng = random.Random(0)
    out = []
    for _ in range(count):
        length = rng.randint(3, 40)
        out.append(([rng.randrange(1, VOCAB) for _ in range(length)], rng.randint(1, length - 1)))
    return out


def test_packed_completion_logps_equal_the_scorers_and_carry_gradients(house):
    from trainarena.tasks.text.scoring import summed_logps

    model, given = tiny_model(), sequences()
    sums, counts = house["policyloop"].completion_logps(model, given, 0, False)

    expected = summed_logps(model, given, 4, 0, torch.device("cpu"))
    assert sums.tolist() == pytest.approx(expected, abs=1e-4)
    assert counts.tolist() == [len(ids) - start for ids, start in given]
    with torch.no_grad():  # at a temperature: the logits divided by it, one sequence at a time
        tempered = []
        for ids, start in given:
            logps = (model(torch.tensor([ids])).logits[0, :-1] / 0.7).log_softmax(-1)
            tempered.append(sum(logps[i - 1, ids[i]].item() for i in range(start, len(ids))))
    sums_tempered, _ = house["policyloop"].completion_logps(model, given, 0, False, 0.7)
    assert sums_tempered.tolist() == pytest.approx(tempered, abs=1e-4)
    assert summed_logps(model, given, 4, 0, torch.device("cpu"), temperature=0.7) == pytest.approx(tempered, abs=1e-4)
    sums_tempered.sum().backward()
    assert all(p.grad is not None for p in model.model.layers[0].parameters())


def test_sft_loss_is_the_chosen_completions_nll_per_token_and_training_on_it_lowers_it(house):
    from trainarena.tasks.text.scoring import summed_logps

    model, rng = tiny_model(), random.Random(2)
    pairs = [([rng.randrange(1, VOCAB) for _ in range(rng.randint(2, 9))],
              [rng.randrange(1, VOCAB) for _ in range(rng.randint(1, 5))],
              [rng.randrange(1, VOCAB) for _ in range(rng.randint(1, 5))]) for _ in range(6)]
    logps = house["policyloop"].packed_logps(model, 0, False)
    chosen = [(p + c, len(p)) for p, c, _ in pairs]
    per_token = [s / len(c) for s, (_, c, _) in zip(summed_logps(model, chosen, 4, 0, torch.device("cpu")), pairs, strict=True)]
    loss = house["dpo"].sft_loss(logps, pairs)
    assert loss.item() == pytest.approx(-sum(per_token) / len(pairs), abs=1e-4)  # the rejected answers play no part
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(5):
        optimizer.zero_grad()
        house["dpo"].sft_loss(logps, pairs).backward()
        optimizer.step()
    assert house["dpo"].sft_loss(logps, pairs).item() < loss.item() - 0.1


def test_best_scale_is_the_one_of_lowest_held_out_loss(house):
    dpo = house["dpo"]
    assert dpo.best_scale([3.0] * 9 + [-1.0]) == 1.0  # mostly right and confident: keep the training
    assert dpo.best_scale([-2.0, -1.0, 0.5]) == 0.0  # mostly wrong: back to the base (loss ln 2)
    margins = [random.Random(1).gauss(0.3, 2.0) for _ in range(50)]

    def loss(scale):
        return sum(math.log1p(math.exp(-scale * m)) for m in margins)

    assert loss(dpo.best_scale(margins)) == min(loss(s) for s in dpo.SCALES)


def test_best_scale_extrapolates_right_but_timid_margins(house):
    """Every held-out pair ranked right, by little: the weights move past the trained ones (ExPO)."""
    dpo = house["dpo"]
    assert dpo.best_scale([0.2] * 10) == max(dpo.SCALES) > 1.0


def test_an_extrapolated_scale_is_kept_only_if_the_measured_margins_bear_it_out(house):
    # best_scale takes margins as proportional to the scale; the moved weights are measured, and
    # weights whose measured held-out loss is no better than the trained ones' go back to them.
    dpo = house["dpo"]
    base = tiny_model()
    timid = [0.2] * 10  # chooses the largest scale
    for measured, kept in (([0.5] * 10, max(dpo.SCALES)), ([0.1] * 10, 1.0), (None, 1.0)):
        model = shifted_copy(base)  # trained = base + 1
        assert dpo.settle_scale(model, base, False, timid, lambda measured=measured: measured) == kept
        for moved, original in zip(model.parameters(), base.parameters(), strict=True):
            assert torch.allclose(moved, original + kept, atol=1e-5)
    model = shifted_copy(base)
    assert dpo.settle_scale(model, base, False, [-2.0, -1.0, 0.5], lambda: pytest.fail("the base needs no measuring")) == 0.0


def test_weights_scaled_back_to_the_base_are_saved_saying_so(house, tmp_path):
    """Held-out pairs that choose scale 0 leave the base model's weights exactly, and the save says so
    in the contract's outcome file, which the platform reads for the model card and the job's views
    (a customer got the base model back with nothing saying so); a save of trained weights says nothing."""
    from trainarena.contract import OUTCOME_FILE, same_as_base_reason
    from trainarena.tasks.base_weights import weights_equal_base

    dpo, train = house["dpo"], importlib.import_module("train")
    base = tiny_model()
    model = shifted_copy(base)
    wrong = [-2.0, -1.0, 0.5]
    assert dpo.settle_scale(model, base, False, wrong, lambda: pytest.fail("the base needs no measuring")) == 0.0
    assert all(torch.equal(moved, original) for moved, original in zip(model.parameters(), base.parameters(), strict=True))

    class Tokenizer:
        def save_pretrained(self, folder):
            pass

    train.save(model, Tokenizer(), str(tmp_path / "kept"), same_as_base=dpo.base_kept_reason(wrong))
    assert same_as_base_reason(tmp_path / "kept") == dpo.base_kept_reason(wrong)
    # The platform checks the claim against the base model's saved weights before the card repeats it.
    base.save_pretrained(tmp_path / "base")
    assert weights_equal_base(tmp_path / "kept", "dpo", lambda: tmp_path / "base")
    assert dpo.base_kept_reason(wrong).startswith("on 3 held-out pairs no scale of the trained weights had a DPO loss below the base model's (0.6931;")
    train.save(shifted_copy(base), Tokenizer(), str(tmp_path / "trained"))
    assert not (tmp_path / "trained" / OUTCOME_FILE).exists() and same_as_base_reason(tmp_path / "trained") is None
    assert not weights_equal_base(tmp_path / "trained", "dpo", lambda: tmp_path / "base")


def test_scaling_toward_the_base_moves_the_weights_that_fraction(house):
    dpo = house["dpo"]
    base = tiny_model()
    model = shifted_copy(base)
    dpo.scale_toward_base(model, base, lora=False, scale=0.25)
    for moved, original in zip(model.parameters(), base.parameters(), strict=True):
        assert torch.allclose(moved, original + 0.25, atol=1e-6)
    dpo.scale_toward_base(model, base, lora=False, scale=2.0)  # past the trained weights: twice their change
    for moved, original in zip(model.parameters(), base.parameters(), strict=True):
        assert torch.allclose(moved, original + 0.5, atol=1e-6)


@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")  # peft 0.21 on transformers 5
def test_scaling_a_lora_model_scales_its_update(house):
    from peft import LoraConfig, get_peft_model

    dpo = house["dpo"]
    model = get_peft_model(tiny_model(), LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.fill_(0.5)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    dpo.scale_toward_base(model, None, lora=True, scale=0.5)
    for name, parameter in model.named_parameters():
        factor = 0.5 if "lora_B" in name else 1.0
        assert torch.equal(parameter, before[name] * factor), name


def test_grpo_advantages_are_centred_weights_toward_the_scores_optimum(house):
    grpo = house["grpo"]
    scores = torch.tensor([[0.2, 0.2, 0.2, 0.2], [0.0, 0.1, 0.0, 0.0], [0.3, 0.25, 0.0, -0.1]])
    advantages = grpo.group_advantages(scores, 0.05)
    weights = torch.exp(scores / 0.05)
    expected = 4 * weights / weights.sum(1, keepdim=True) - 1
    assert torch.allclose(advantages, expected, atol=1e-5)
    assert advantages[0].abs().max() < 1e-6  # an all-alike group teaches nothing
    assert torch.allclose(advantages.sum(1), torch.zeros(3), atol=1e-5)
    # e^(0.1 / 0.05) = e^2 times the others' weight: the better completion gets nearly all of it
    assert advantages[1, 1] == pytest.approx(4 * math.e**2 / (math.e**2 + 3) - 1, abs=1e-5)
    plain = grpo.group_advantages(scores, 0.0)  # no KL in the score: GRPO's group-normalised ones
    assert torch.allclose(plain[2], (scores[2] - scores[2].mean()) / (scores[2].std() + grpo.STD_EPSILON))


def test_grpo_guard_picks_the_best_fraction_scored_in_time(house):
    grpo = house["grpo"]
    scored = []
    means = {1.0: 0.02, 0.0: 0.03, 0.5: 0.05, 0.75: 0.04, 0.25: 0.01}

    def score_at(scale):  # per-prompt values whose differences to the base hardly vary
        scored.append(scale)
        return [means[scale] + 0.001 * (i % 2) * scale for i in range(8)]

    chosen, found = grpo.best_fraction(score_at, lambda needed: False)
    assert chosen == 0.5 and found == pytest.approx({s: m + 0.0005 * s for s, m in means.items()})
    assert scored == list(grpo.SCALES) and grpo.SCALES[:2] == (1.0, 0.0)  # trained, then base, first
    assert grpo.best_fraction(score_at, lambda needed: len(scored) >= 7)[0] == 0.0  # time for two: the base beat training
    assert grpo.best_fraction(score_at, lambda needed: True) == (1.0, {})  # no time at all: the trained model
    # Time left for one more scoring as long as the longest so far, not for one started at the last moment.
    slow = lambda scale: time.sleep(0.05) or [scale]  # noqa: E731
    asked: list[float] = []
    grpo.best_fraction(slow, lambda needed: asked.append(needed) or len(asked) > 2)
    assert asked[0] == 0.0 and asked[1] >= 0.05 and asked[2] >= 0.05


def test_grpo_guard_keeps_the_base_unless_a_gain_clears_its_standard_error(house):
    grpo = house["grpo"]
    noise = [0.1, -0.1] * 16  # the per-prompt spread of the house's 32 held-out prompts

    def noisy(gain):  # the base's values, then every fraction's: ``gain`` more, with that noise
        return lambda scale: [0.03 + (scale > 0) * (gain * scale + e) for e in noise]

    assert grpo.best_fraction(noisy(0.01), lambda needed: False)[0] == 0.0  # +0.01 against a 0.018 standard error
    assert grpo.best_fraction(noisy(0.2), lambda needed: False)[0] == 1.0
    # 0.75 is within a standard error of 1's gain: the smaller move is saved
    assert grpo.best_fraction(noisy(0.06), lambda needed: False)[0] == 0.75
    assert grpo.paired_gain([0.1, 0.3], [0.0, 0.0]) == pytest.approx((0.2, 0.1))


def test_a_grpo_guard_that_fails_saves_the_trained_weights(house, capsys):
    def out_of_memory(fraction):
        raise torch.OutOfMemoryError("CUDA out of memory")

    assert house["grpo"].guarded_fraction(out_of_memory, lambda needed: False) == (1.0, {})
    assert "held-out guard failed (OutOfMemoryError" in capsys.readouterr().out


def test_a_grpo_guard_that_keeps_the_base_says_so_on_the_runs_last_lines(house, capsys, monkeypatch, tmp_path):
    """A copy of the house script scoring exactly as the base model on a seed is its guard at work (no
    held-out gain above noise): the run's last stdout line says so, and stderr, whose tail `runs show`
    prints. A fraction above 0 leaves no note; nor does a run of trained weights."""
    grpo = house["grpo"]
    train = importlib.import_module("train")  # the house's, from its folder (the fixture's path)
    monkeypatch.setattr(train, "SAVED_NOTES", [])
    output = tmp_path / "output"
    output.mkdir()
    monkeypatch.setattr(train, "parse_args", lambda: SimpleNamespace(task_type="grpo", budget_seconds=30.0, seed=1, output_dir=str(output)))
    monkeypatch.setattr(signal, "signal", lambda number, handler: None)  # the test process keeps its handlers
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")

    def guarded(best, steps=31):
        def run(args, stop_at):
            grpo.say_saved(best, {0.0: 0.0326, 0.5: 0.0335, 1.0: 0.0343})
            return steps
        return run

    monkeypatch.setattr(grpo, "run", guarded(0.0))
    train.main()
    out, err = capsys.readouterr()
    assert "(0: 0.0326, 0.5: 0.0335, 1: 0.0343): saved 0\n" in out
    last = out.splitlines()[-1]
    assert last.startswith("baseline: 31 steps, saved ") and last.endswith(f"from the stop time; {grpo.KEPT_BASE_NOTE}")
    assert grpo.KEPT_BASE_NOTE.startswith("kept the base model: no held-out gain above noise")
    assert err == grpo.KEPT_BASE_NOTE + "\n"

    train.SAVED_NOTES.clear()
    monkeypatch.setattr(grpo, "run", guarded(0.5))
    train.main()
    out, err = capsys.readouterr()
    assert out.splitlines()[-1].endswith("from the stop time") and err == ""

    monkeypatch.setattr(grpo, "run", lambda args, stop_at: 0)
    train.main()
    out, err = capsys.readouterr()
    assert out.splitlines()[-1].endswith("; kept the base model: no training step fitted in the budget")
    assert err == "kept the base model: no training step fitted in the budget\n"
    from trainarena.contract import same_as_base_reason

    assert same_as_base_reason(output) == "no training step fitted in the budget"  # the card and the job say it too


def test_the_guards_fraction_0_is_the_base_bit_for_bit(house):
    """What makes the kept base score exactly as the base model: no rounding left of the trained weights."""
    base = tiny_model()
    model = shifted_copy(base)
    tuned = {name: p.detach().clone() for name, p in model.named_parameters()}
    house["grpo"].move_from_base(model, base, False, tuned, 0.0)
    assert all(torch.equal(moved, original) for moved, original in zip(model.parameters(), base.parameters(), strict=True))


def test_grpo_guard_moves_from_the_base_whatever_the_weights_were_at(house):
    grpo = house["grpo"]
    base = tiny_model()
    model = shifted_copy(base)
    tuned = {name: p.detach().clone() for name, p in model.named_parameters()}
    for scale in (0.0, 0.5, 0.25):  # each from wherever the last left the weights
        grpo.move_from_base(model, base, False, tuned, scale)
        for moved, original in zip(model.parameters(), base.parameters(), strict=True):
            assert torch.allclose(moved, original + scale, atol=1e-6)
