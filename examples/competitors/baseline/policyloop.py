"""What the house DPO and GRPO loops share (dpo.py, grpo.py): completion log-probabilities of many
sequences in one packed forward pass, the GPU accelerations, and a clock-driven step loop. No TRL:
importing its trainers and building them took 5-8 s of a 30 s run on the demo's CPUs.

- Packing (everywhere): a step's sequences go end to end in one row, positions restarting at 0 for each
  (fastloop.pack), so no compute goes to padding; the LM head runs only where a completion token is
  predicted, and each token's log-probability is summed into its own sequence.
- On a GPU: varlen attention over the packed row and Liger's RMSNorm/RoPE/SwiGLU kernels when
  installed (fastloop.py; Liger's fused loss is not used: DPO and GRPO need per-token log-probs, not a
  mean cross-entropy), fused AdamW (fastloop.optimizer_for). Not torch.compile: preference and RL
  batches change shape every step, and the demo's budgets never repay compiling.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import fastloop

Sequence = tuple[list[int], int]  # (token ids, prompt length): the completion is ids[prompt length:]


def accelerate(model, varlen: bool = True) -> bool:
    """On CUDA: Liger's kernels when installed and, if ``varlen``, varlen attention (True when the model
    now uses it)."""
    if fastloop.liger_installed():
        from transformers.integrations.liger import apply_liger_kernel

        # the loss is computed here from per-token log-probs, so Liger's fused cross-entropy stays off
        apply_liger_kernel(model, {"fused_linear_cross_entropy": False})
    return varlen and fastloop.use_varlen_attention(model)


def completion_logps(model, sequences: list[Sequence], pad_id: int, varlen: bool, temperature: float = 1.0):
    """(summed log-probability of each sequence's completion, and each completion's token count),
    tensors on the model's device; differentiable unless called under ``torch.no_grad``. The
    temperature divides the logits first (the distribution a sampler at that temperature draws from)."""
    import torch
    import torch.nn.functional as F

    device = next(model.parameters()).device
    batch = fastloop.pack([{"input_ids": ids, "labels": [-100] * start + ids[start:]} for ids, start in sequences], pad_id)
    inputs = fastloop.model_inputs(batch, device, varlen)
    targets = batch["labels"][0, 1:]
    scored = targets != -100
    lengths = batch["cu_seq_lens"].diff().long()
    owner = torch.repeat_interleave(torch.arange(len(lengths)), lengths)[1:][scored].to(device)
    targets, scored = targets[scored].to(device), scored.to(device)
    if any(getattr(model.config, name, None) for name in fastloop.LOGIT_TRANSFORMS):  # the model's own head
        logits = model(**inputs).logits[0, :-1][scored].float()
    else:
        logits = model.get_output_embeddings()(model.get_decoder()(**inputs).last_hidden_state[0, :-1][scored]).float()
    count = len(sequences)
    token_logps = -F.cross_entropy(logits / temperature, targets, reduction="none")
    sums = torch.zeros(count, device=device).index_add(0, owner, token_logps)
    return sums, torch.bincount(owner, minlength=count)


def packed_logps(model, pad_id: int, varlen: bool) -> Callable:
    """``completion_logps`` bound to ``model``; if a varlen step fails, says why and goes on with SDPA."""
    state = {"varlen": varlen}

    def logps(sequences: list[Sequence], temperature: float = 1.0):
        if state["varlen"]:
            try:
                return completion_logps(model, sequences, pad_id, True, temperature)
            except Exception as error:  # noqa: BLE001 - a kernel failure: train on SDPA rather than not at all
                print(f"varlen step failed ({type(error).__name__}: {error}); using SDPA", flush=True)
                model.set_attn_implementation("sdpa")
                state["varlen"] = False
        return completion_logps(model, sequences, pad_id, False, temperature)

    return logps


def frozen_base(model, lora: bool):
    """(a model that computes as the base model did, a context-manager factory it must run under):
    LoRA's own model with its adapter off, else a frozen copy of ``model`` taken now."""
    import contextlib
    import copy

    if lora:
        return model, model.disable_adapter
    return copy.deepcopy(model).eval().requires_grad_(False), contextlib.nullcontext


def train_on_clock(step: Callable[[list[int]], float], batches: Iterable[list[int]], stop_at: float,
                   log_every: int = fastloop.LOG_EVERY, reserve_steps: float = 0.0) -> int:
    """Run ``step(indices) -> value`` (printed every ``log_every`` steps) over ``batches`` until they run out, the next step would end past
    ``stop_at`` (assuming it lasts as long as the last one; the first, slowed by set-up, is no
    estimate) or SIGTERM (train.py's handler: the step in progress ends where it is). ``reserve_steps``:
    that many step-times are kept free after the last step, for work that follows. Returns the steps."""
    from train import STOP_REQUESTED, interruptible

    steps, step_seconds = 0, 0.0
    with interruptible():
        for indices in batches:
            if STOP_REQUESTED.is_set() or time.time() + (1 + reserve_steps) * (step_seconds if steps >= 2 else 0.0) >= stop_at:
                break
            began = time.time()
            value = step(indices)
            steps += 1
            step_seconds = time.time() - began
            if log_every and steps % log_every == 0:
                print(f"step {steps}: {value:.4f} ({step_seconds:.2f}s/step)", flush=True)
    return steps


def optimizer_step(model, optimizer, schedule, loss, max_grad_norm: float = 1.0) -> float:
    """Backward, clip, update, advance the schedule; returns the loss."""
    import torch

    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    schedule.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()
