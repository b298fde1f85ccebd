"""The house SFT loop (examples/competitors/baseline/fastloop.py) on a tiny LLaMA built from a config:
packing, the varlen attention adapter and the scored-positions-only loss train exactly as the plain
padded loop does (same data, same seed, same batches), and a failing compiled step falls back to
eager training instead of ending the run."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

HOUSE = Path(__file__).resolve().parents[2] / "examples" / "competitors" / "baseline"
VOCAB = 300
STEPS_EPOCHS = 3  # 40 examples, batches of 8: 15 steps


@pytest.fixture(scope="module")
def fastloop():
    spec = importlib.util.spec_from_file_location("house_fastloop", HOUSE / "fastloop.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def examples():
    """Variable lengths (5-60 tokens), prompts of 1+ tokens masked."""
    rng = random.Random(0)
    rows = []
    for _ in range(40):
        length = rng.randint(5, 60)
        prompt = rng.randint(1, length - 1)
        ids = [rng.randrange(VOCAB) for _ in range(length)]
        rows.append({"input_ids": ids, "labels": [-100] * prompt + ids[prompt:]})
    return rows


def tiny_model(attention: str = "sdpa"):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    model = LlamaForCausalLM(config)
    model.set_attn_implementation(attention)
    return model


def loss_curve(fastloop, examples, *, packed: bool, varlen: bool = False, **options) -> list[float]:
    model = tiny_model()
    if varlen:
        assert fastloop.use_varlen_attention(model)
    optimizer = fastloop.optimizer_for(model, 1e-3, cuda=False)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    history = fastloop.train_steps(model, examples, fastloop.step_batches(len(examples), 8, 0, STEPS_EPOCHS),
                                   optimizer=optimizer, schedule=schedule, pad_id=0, packed=packed, log_every=0, **options)
    return [loss for _, loss in history]


@pytest.fixture(scope="module")
def packed_curve(fastloop, examples) -> list[float]:
    return loss_curve(fastloop, examples, packed=True)


def padded_reference(examples) -> list[float]:
    """The plain loop: padded batches, the model's own loss (all logits), the same shuffles."""
    model = tiny_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    rng, losses = random.Random(0), []
    for _ in range(STEPS_EPOCHS):
        order = list(range(len(examples)))
        rng.shuffle(order)
        for start in range(0, len(order), 8):
            chunk = [examples[i] for i in order[start : start + 8]]
            width = max(len(e["input_ids"]) for e in chunk)
            ids = torch.tensor([e["input_ids"] + [0] * (width - len(e["input_ids"])) for e in chunk])
            mask = torch.tensor([[1] * len(e["input_ids"]) + [0] * (width - len(e["input_ids"])) for e in chunk])
            labels = torch.tensor([e["labels"] + [-100] * (width - len(e["labels"])) for e in chunk])
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
    return losses


@pytest.mark.slow
def test_packed_loop_follows_the_padded_loop(packed_curve, examples):
    reference, packed = padded_reference(examples), packed_curve
    assert len(packed) == len(reference) == 15
    assert packed == pytest.approx(reference, rel=1e-4)
    assert packed[-1] < packed[0] - 0.2  # and it learned


@pytest.mark.slow
def test_varlen_attention_adapter_matches_the_block_mask(fastloop, examples, packed_curve):
    """The adapter the CUDA kernel plugs into (per-sequence SDPA on the CPU, grouped-query heads)."""
    assert loss_curve(fastloop, examples, packed=True, varlen=True) == pytest.approx(packed_curve, rel=1e-4)


def test_pack_restarts_positions_and_masks_each_first_token(fastloop):
    rows = [{"input_ids": [5, 6, 7], "labels": [5, 6, 7]}, {"input_ids": [8, 9], "labels": [-100, 9]}]
    batch = fastloop.pack(rows, pad_id=0, multiple=4)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9, 0, 0, 0]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1, 0, 1, 2]]
    # A first token is never a target: the previous example's last token must not learn to predict it.
    assert batch["labels"].tolist() == [[-100, 6, 7, -100, 9, -100, -100, -100]]
    assert batch["cu_seq_lens"].tolist() == [0, 3, 5, 8] and batch["max_length"] == 4  # a power of two, >= multiple
    assert fastloop.pack(rows, pad_id=0)["max_length"] == 3 and fastloop.pack(rows * 40, 0, 4)["max_length"] == 4


@pytest.mark.slow
def test_a_failing_compiled_step_falls_back_to_eager(fastloop, examples, packed_curve, monkeypatch, capsys):
    """A compiled decoder that works for two steps, then fails (a recompilation, say): the third step
    is redone eager, and training goes on as if nothing had been compiled."""

    def flaky_compile(module, *args, **kwargs):
        calls = []

        def compiled(*call_args, **call_kwargs):
            calls.append(1)
            if len(calls) == 3:
                raise RuntimeError("inductor: recompilation failed")
            return module(*call_args, **call_kwargs)

        return compiled

    monkeypatch.setattr(torch, "compile", flaky_compile)
    speedups: dict = {}
    losses = loss_curve(fastloop, examples, packed=True, compile=True, speedups=speedups)
    captured = capsys.readouterr()
    # On stderr: a caller's stdout may be a JSON report (benchmarks.gpu_throughput --json).
    assert captured.err.count("accelerated step failed (RuntimeError: inductor: recompilation failed); training eager") == 1
    assert "accelerated step failed" not in captured.out
    assert losses == pytest.approx(packed_curve, rel=1e-4)
    assert speedups == {"packed": True, "varlen": False, "compiled": True, "liger": False, "eager_from_step": 2,
                        "error": "RuntimeError: inductor: recompilation failed"}


def test_speedups_report_what_ran_without_a_fallback(fastloop, examples):
    model = tiny_model()
    optimizer = fastloop.optimizer_for(model, 1e-3, cuda=False)
    speedups: dict = {}
    history = fastloop.train_steps(model, examples, iter([[0, 1], [2, 3]]), optimizer=optimizer,
                                   schedule=torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0), pad_id=0,
                                   log_every=0, speedups=speedups)
    assert len(history) == 2
    assert speedups == {"packed": True, "varlen": False, "compiled": False, "liger": False, "eager_from_step": None, "error": None}


def test_varlen_unavailable_is_said_on_stderr(fastloop, capsys):
    assert fastloop.use_varlen_attention(object()) is False  # no set_attn_implementation: not pluggable
    captured = capsys.readouterr()
    assert "varlen attention unavailable" in captured.err and captured.out == ""


@pytest.mark.slow
def test_stops_when_asked(fastloop, examples):
    asked = []

    def stop_after_four(step: int, seconds: float) -> bool:
        asked.append(step)
        return step >= 4

    assert len(loss_curve(fastloop, examples, packed=True, should_stop=stop_after_four)) == 4
    assert asked == [0, 1, 2, 3, 4]
