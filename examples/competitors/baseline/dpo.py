"""House baseline for DPO tasks: a hand-written sigmoid DPO loop with the platform's beta, so training
minimises exactly the scored loss, on the clock like train.py. No TRL (policyloop.py says why).

- Rows are rendered and tokenized as the scorer does (the dataset spec's format strings and its
  "scoring" entry: prompt and prompt + completion + eos tokenized apart, the completion being what
  follows their common prefix).
- The first SFT_FRACTION of the training time, at most one epoch, is supervised fine-tuning on the
  chosen completions (mean token NLL), then DPO: the SFT-then-preference recipe of the DPO paper
  (there the reference is the SFT model; here it stays the base, as the scorer's is). SFT teaches
  what a good completion looks like from every token, where a DPO pair gives one bit; too long an
  SFT phase hurt (it raises both answers of a pair, and DPO must undo that).
- The reference log-probs (the base model's) are computed once per pair, when a step first uses it.
- Each step packs its pairs' chosen and rejected sequences in one row (policyloop.completion_logps).
- A held-out tenth of the pairs (at most 64) decides, after training, how far the model moves from
  the base: the weights become base + s * (trained - base) for the s in SCALES whose held-out DPO
  loss is lowest, margins taken as proportional to s. When the pairs teach little, as on a short run,
  training mostly adds noise to the margins, and a DPO loss grows with noisy margins: a short run
  scored worse than the base itself without s < 1. When the margins are right but timid, s > 1
  extrapolates past the trained weights (as ExPO does with DPO models, Zheng et al. 2024). A scale
  other than 0 (the base, exact) is then measured on the held-out pairs and kept only if it beats
  the trained weights. At 0 the saved weights are the base model's, and /output/trainarena_outcome.json
  says so and why (docs/contract.md): the customer's model card and job then say it too.
- Full fine-tune for small models, LoRA for large ones (train.load_model); on a GPU, varlen attention,
  Liger's kernels when installed and fused AdamW (policyloop.py).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable

# Measured on the tiny model (docs/benchmarks.md, "DPO and GRPO: what was tried"), hidden DPO loss,
# base 0.693, mean (sd) of 3 seeds: at 120 steps 3e-4 -> 0.692 (0.012), 1e-3 -> 0.677 (0.004), 3e-3 ->
# 0.683 (0.008); on the clock of a loaded machine 1e-3 -> 0.688 (0.003), 3e-3 -> 0.689 (0.013).
LEARNING_RATE = 1e-3
LEARNING_RATE_LORA = 2e-4  # not measured here (no large model offline): the instruct recipe's LoRA rate
BATCH_SIZE = 8
# Share of the training time spent on SFT before DPO, at most one epoch of steps (the rest is DPO).
# Hidden DPO loss, seed 1: 0 -> 0.670-0.676, 0.15 -> 0.647, 0.2 -> 0.646, 0.3 -> 0.676, 0.5 -> 0.679;
# at 120 s the time share alone gave ~3 epochs of SFT and 0.688, capped (65 steps) 0.638
# (docs/benchmarks.md, "DPO and GRPO: what was tried").
SFT_FRACTION = 0.2
MAX_EPOCHS = 4
MAX_LENGTH = 512
HELD_OUT_FRACTION = 0.1  # pairs kept out of training to choose the scale below
HELD_OUT_MAX_PAIRS = 64  # at most this many, so the pass fits the time kept for it on any split size
# How far from the base (0) toward the trained weights (1) and past them: after SFT then DPO the
# hidden margins were timid (their best multiplier 1.5-2 on every seed); up to 2: 0.652 vs 0.658.
SCALES = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
# The held-out passes cost about this many training steps' time (each two forward passes per pair,
# no backward, at most 8 batches of 8; one as trained, one at the chosen scale), kept free at the end.
HELD_OUT_STEPS = 12

Pair = tuple[list[int], list[int], list[int]]  # (prompt, chosen, rejected) token ids


def render(row: dict, spec: dict) -> dict[str, str]:
    system = (str(row.get(spec.get("field_system") or "") or "") if spec.get("field_system") else "") or spec.get("system_prompt") or ""
    prefix = spec["system_format"].format(system=system) if system else ""
    prompt = prefix + spec["prompt_format"].format(prompt=row[spec["field_prompt"]]) + spec["response_separator"]
    return {
        "prompt": prompt,
        "chosen": spec["chosen_format"].format(chosen=row[spec["field_chosen"]]),
        "rejected": spec["rejected_format"].format(rejected=row[spec["field_rejected"]]),
    }


def encode_pair(tokenizer, prompt: str, chosen: str, rejected: str) -> Pair:
    """As the scorer: ids(prompt) and ids(prompt + completion + eos) with special tokens, the completion
    being what follows their common prefix; too long: the start is kept (at least one completion token)."""
    eos = tokenizer.eos_token or ""
    prompt_ids = tokenizer(prompt)["input_ids"]
    with_chosen, with_rejected = (tokenizer(prompt + text + eos)["input_ids"] for text in (chosen, rejected))
    cut = min(common_prefix(prompt_ids, with_chosen), common_prefix(prompt_ids, with_rejected), MAX_LENGTH - 1)
    return prompt_ids[:cut], with_chosen[cut:MAX_LENGTH], with_rejected[cut:MAX_LENGTH]


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def sequences(pairs: list[Pair]) -> list[tuple[list[int], int]]:
    """The chosen sequences of ``pairs``, then their rejected ones."""
    return [(p + c, len(p)) for p, c, _ in pairs] + [(p + r, len(p)) for p, _, r in pairs]


def reference_logps(base, base_context, pairs: list[Pair], pad_id: int, varlen: bool) -> Callable:
    """indices -> the base model's summed log-probs (row 0 chosen, row 1 rejected) of those pairs,
    each pair computed once, when a step first needs it (a short run sees a fraction of the pairs, and
    computing them all up front cost a third of an epoch). ``base`` and ``base_context``:
    policyloop.frozen_base's."""
    import policyloop
    import torch

    logps = policyloop.packed_logps(base, pad_id, varlen)
    values, known = torch.zeros((2, len(pairs)), device=next(base.parameters()).device), set()

    def reference(indices: list[int]):
        missing = [i for i in indices if i not in known]
        if missing:
            with torch.no_grad(), base_context():
                values[:, missing] = logps(sequences([pairs[i] for i in missing]))[0].view(2, -1)
            known.update(missing)
        return values[:, indices]

    return reference


def sft_loss(logps: Callable, batch: list[Pair]):
    """The SFT phase's loss: the mean over ``batch`` of its chosen completions' NLL per token (``logps``:
    policyloop.packed_logps's); the rejected ones are not computed."""
    sums, counts = logps(sequences(batch)[: len(batch)])
    return -(sums / counts.clamp(min=1)).mean()


def best_scale(margins: list[float]) -> float:
    """The scale in SCALES whose margins (``margins`` times it) give the lowest mean DPO loss.

    >>> best_scale([2.0, 2.0, 2.0, -1.0]), best_scale([0.5, -0.5, -0.5])
    (1.0, 0.0)
    """
    return min(SCALES, key=lambda scale: dpo_loss([scale * m for m in margins]))


def dpo_loss(margins: list[float]) -> float:
    """The mean DPO loss, -log sigmoid(margin), of ``margins`` (already times beta)."""
    return sum(math.log1p(math.exp(-m)) for m in margins) / max(len(margins), 1)


def settle_scale(model, base, lora: bool, margins: list[float], measure: Callable[[], list[float] | None]) -> float:
    """Move the trained weights to the scale ``best_scale(margins)`` chose and return it. The choice took
    margins as proportional to the scale: exact at 0 (the base), else the moved weights' margins are
    measured (``measure``; None when out of time) and kept only if they beat the trained ones (else the
    weights go back to the trained ones, scale 1)."""
    scale = best_scale(margins)
    if scale == 1.0:
        return scale
    scale_toward_base(model, base, lora, scale)
    if scale != 0.0 and ((moved := measure()) is None or dpo_loss(moved) >= dpo_loss(margins)):
        scale_toward_base(model, base, lora, 1.0 / scale)
        return 1.0
    return scale


def base_kept_reason(margins: list[float]) -> str:
    """Why the scale chosen on the held-out pairs was 0 (the weights saved are the base's, exactly): the
    base model's loss (ln 2, every margin 0) was the lowest of every scale's.

    >>> base_kept_reason([-2.0, -1.0, 0.5])
    "on 3 held-out pairs no scale of the trained weights had a DPO loss below the base model's (0.6931; as trained 1.3048)"
    """
    return (f"on {len(margins)} held-out pairs no scale of the trained weights had a DPO loss below the base model's "
            f"({dpo_loss([0.0]):.4f}; as trained {dpo_loss(margins):.4f})")


def scale_toward_base(model, base, lora: bool, scale: float) -> None:
    """Weights = base + scale * (trained - base): LoRA's update is scaled through its B matrices."""
    import torch

    with torch.no_grad():
        if lora:
            for name, parameter in model.named_parameters():
                if "lora_B" in name:
                    parameter.mul_(scale)
        else:
            for parameter, original in zip(model.parameters(), base.parameters(), strict=True):
                parameter.lerp_(original, 1.0 - scale)


def run(args, stop_at: float) -> int:
    """Train and save; returns the optimizer steps taken."""
    import fastloop
    import policyloop
    import torch
    import torch.nn.functional as F
    from train import SAVED_NOTES, STOP_REQUESTED, load_model, save, time_cosine

    with open(args.dataset_spec) as handle:
        spec = json.load(handle)
    beta = float(spec["scoring"]["beta"])
    use_cuda = bool(args.devices) and torch.cuda.is_available()
    model, tokenizer, lora = load_model(args.model, use_cuda)
    with open(args.dataset) as handle:
        pairs = [encode_pair(tokenizer, **render(json.loads(line), spec)) for line in handle if line.strip()]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    varlen = use_cuda and policyloop.accelerate(model)
    logps = policyloop.packed_logps(model, pad_id, varlen)
    base, base_context = policyloop.frozen_base(model, lora)
    reference = reference_logps(base, base_context, pairs, pad_id, varlen)
    learning_rate = LEARNING_RATE_LORA if lora else LEARNING_RATE
    optimizer = fastloop.optimizer_for(model, learning_rate, use_cuda)
    order = list(range(len(pairs)))
    random.Random(args.seed).shuffle(order)
    held = min(int(len(pairs) * HELD_OUT_FRACTION), HELD_OUT_MAX_PAIRS)
    held_out, trained = order[:held], order[held:]
    max_steps = math.ceil(len(trained) / BATCH_SIZE) * MAX_EPOCHS
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, time_cosine(time.time(), stop_at, max_steps))
    sft_until, sft_steps_left = time.time() + SFT_FRACTION * (stop_at - time.time()), math.ceil(len(trained) / BATCH_SIZE)

    def step(indices: list[int]) -> float:
        nonlocal sft_steps_left
        if sft_steps_left > 0 and time.time() < sft_until:
            sft_steps_left -= 1
            loss = sft_loss(logps, [pairs[i] for i in indices])
        else:
            policy = logps(sequences([pairs[i] for i in indices]))[0].view(2, -1)
            chosen, rejected = policy - reference(indices)
            loss = -F.logsigmoid(beta * (chosen - rejected)).mean()
        return policyloop.optimizer_step(model, optimizer, schedule, loss)

    batches = ([trained[i] for i in batch] for batch in fastloop.step_batches(len(trained), BATCH_SIZE, args.seed, MAX_EPOCHS))
    steps = policyloop.train_on_clock(step, batches, stop_at, reserve_steps=HELD_OUT_STEPS if held_out else 0.0)

    def held_out_margins() -> list[float] | None:
        """The held-out pairs' margins (times beta) as the weights are now; None when out of time."""
        model.eval()
        margins: list[float] = []
        with torch.no_grad():
            for start in range(0, len(held_out), BATCH_SIZE):
                if STOP_REQUESTED.is_set() or time.time() >= stop_at:
                    return None
                indices = held_out[start : start + BATCH_SIZE]
                chosen, rejected = logps(sequences([pairs[i] for i in indices]))[0].view(2, -1) - reference(indices)
                margins += (beta * (chosen - rejected)).tolist()
        return margins

    margins = held_out_margins() if steps >= 2 and held_out else None  # None: save as trained
    same_as_base = None
    if margins is not None:
        scale = settle_scale(model, base, lora, margins, held_out_margins)
        print(f"held-out pairs: weights scaled {scale:g} of the way from the base to the trained model", flush=True)
        same_as_base = None if scale else base_kept_reason(margins)
        if same_as_base is not None:  # the run scores exactly as the base model: its last lines say why
            SAVED_NOTES.append(f"kept the base model: {same_as_base}")
    save(model, tokenizer, args.output_dir, same_as_base=same_as_base)
    return steps
