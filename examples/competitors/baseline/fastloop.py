"""The house SFT loop (instruct and chat): padding-free packing, logits only where they are scored, and
on a GPU torch.compile, fused AdamW, varlen attention and Liger's fused linear cross-entropy.

Why each piece, and where it applies:
- Packing (everywhere): a step's examples go end to end in one row, positions restarting at 0 for
  each, so no compute goes to padding (a padded batch of variable-length rows is mostly padding).
  transformers turns restarting ``position_ids`` into a block-diagonal causal mask (SDPA, the CPU
  path). The loss equals the padded batch's: the first token of every example is never a target, so
  no example is predicted from the one before it (tests check the loss curve against a padded loop).
- Varlen attention (CUDA, torch with ``torch.nn.attention.varlen``): each example attends only to
  itself through flash attention's variable-length kernel, so no work goes across examples either.
- Scored logits only (everywhere): the vocabulary projection and the cross-entropy run only at
  positions that predict a completion token; prompt positions (masked) never reach the LM head.
- Liger's fused linear cross-entropy (CUDA, when ``liger_kernel`` is installed): the head and the
  loss in chunks, without materialising the logits. Optional: it needs Triton, so it is not pinned.
- torch.compile of the decoder (the caller decides: train.py compiles on CUDA with a budget long
  enough to repay it; on a CPU with a small model compiling costs more than a demo's whole budget).
  If compiling or a compiled step fails, training goes on eager.
- Fused AdamW (CUDA): one kernel for every parameter instead of a loop of small ones.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import random
import sys
import time
from collections.abc import Callable, Iterator

PACK_MULTIPLE_CUDA = 256  # packed rows are padded to a multiple of this on CUDA, so compiled shapes repeat
VARLEN_ATTENTION = "trainarena_varlen"  # the name the varlen kernel is registered under in transformers
LOG_EVERY = 10  # print the loss every this many steps, as the Trainer did
# Config fields by which a model transforms its logits after the head: such a model keeps its own loss.
LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale")

Example = dict[str, list[int]]  # input_ids and labels (-100: not scored)


def step_batches(count: int, batch_size: int, seed: int, epochs: int) -> Iterator[list[int]]:
    """Example indices for each optimizer step: every epoch a fresh shuffle (seeded), the last batch of
    an epoch possibly shorter."""
    rng = random.Random(seed)
    for _ in range(epochs):
        order = list(range(count))
        rng.shuffle(order)
        for start in range(0, count, batch_size):
            yield order[start : start + batch_size]


def pack(examples: list[Example], pad_id: int, multiple: int = 1) -> dict:
    """One row holding every example end to end, positions restarting at 0 for each; padded to a
    multiple of ``multiple`` with one more (unscored) sequence. ``cu_seq_lens``: sequence boundaries;
    ``max_length``: the longest sequence (rounded up to a power of two when ``multiple`` > 1)."""
    import torch

    ids: list[int] = []
    positions: list[int] = []
    labels: list[int] = []
    bounds = [0]
    for example in examples:
        ids += example["input_ids"]
        positions += range(len(example["input_ids"]))
        labels += [-100, *example["labels"][1:]]  # a first token is never a target (as in a padded row)
        bounds.append(len(ids))
    tail = -len(ids) % multiple
    if tail:
        ids += [pad_id] * tail
        positions += range(tail)
        labels += [-100] * tail
        bounds.append(len(ids))
    longest = max(b - a for a, b in zip(bounds, bounds[1:], strict=False))
    if multiple > 1:  # compiled: a bound, not the exact value (a power of two), so few values ever recompile
        longest = max(multiple, 1 << (longest - 1).bit_length())
    return {
        "input_ids": torch.tensor([ids]),
        "position_ids": torch.tensor([positions]),
        "labels": torch.tensor([labels]),
        "cu_seq_lens": torch.tensor(bounds, dtype=torch.int32),
        "max_length": longest,
    }


def pad(examples: list[Example], pad_id: int) -> dict:
    """The plain batch: rows right-padded to the longest, an attention mask over the padding."""
    import torch

    width = max(len(e["input_ids"]) for e in examples)
    return {
        "input_ids": torch.tensor([e["input_ids"] + [pad_id] * (width - len(e["input_ids"])) for e in examples]),
        "attention_mask": torch.tensor([[1] * len(e["input_ids"]) + [0] * (width - len(e["input_ids"])) for e in examples]),
        "labels": torch.tensor([e["labels"] + [-100] * (width - len(e["labels"])) for e in examples]),
    }


def model_inputs(batch: dict, device, varlen: bool) -> dict:
    """The keyword arguments of a forward pass over ``batch`` (packed or padded), on ``device``."""
    if "attention_mask" in batch:
        return {"input_ids": batch["input_ids"].to(device), "attention_mask": batch["attention_mask"].to(device),
                "use_cache": False}
    # No cache: with one, transformers ignores restarting positions and lets sequences see each other.
    inputs = {"input_ids": batch["input_ids"].to(device), "position_ids": batch["position_ids"].to(device),
              "use_cache": False}
    if varlen:  # the names transformers passes through to the attention function (its flash path's)
        bounds = batch["cu_seq_lens"].to(device)
        inputs |= {"cu_seq_lens_q": bounds, "cu_seq_lens_k": bounds,
                   "max_length_q": batch["max_length"], "max_length_k": batch["max_length"]}
    return inputs


def _sequence_attention(query, key, value, bounds, scale: float):
    """Causal attention of each sequence with itself: the reference for, and fallback of, the varlen
    kernel. Tensors are (tokens, heads, dim); key/value may have fewer heads (GQA)."""
    import torch
    import torch.nn.functional as F

    out = []
    for start, end in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        q, k, v = (t[start:end].transpose(0, 1) for t in (query, key, value))
        out.append(F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale,
                                                  enable_gqa=k.shape[0] != q.shape[0]).transpose(0, 1))
    return torch.cat(out)


def _varlen_kernel() -> Callable | None:
    """torch's varlen flash attention (torch >= 2.10), adapted to the two signatures it has had."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    parameters = inspect.signature(varlen_attn).parameters
    causal = {"is_causal": True} if "is_causal" in parameters else {"window_size": (-1, 0)}

    def kernel(query, key, value, bounds, max_length: int, scale: float):
        options = dict(causal)
        if query.shape[1] != key.shape[1]:  # grouped-query attention
            if "enable_gqa" in parameters:
                options["enable_gqa"] = True
            else:
                repeat = query.shape[1] // key.shape[1]
                key, value = key.repeat_interleave(repeat, dim=1), value.repeat_interleave(repeat, dim=1)
        return varlen_attn(query, key, value, bounds, bounds, max_length, max_length, scale=scale, **options)

    return kernel


def varlen_attention(kernel: Callable | None) -> Callable:
    """A transformers attention function over one packed row, (1, heads, tokens, dim) in and (1, tokens,
    heads, dim) out: ``kernel`` (the varlen one, chosen once, outside any compiled code) or, without
    one, per-sequence SDPA (the same result)."""

    def attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
        bounds, scale = kwargs["cu_seq_lens_q"], scaling if scaling is not None else query.shape[-1] ** -0.5
        q, k, v = (t[0].transpose(0, 1) for t in (query, key, value))
        if kernel is None or not q.is_cuda:
            out = _sequence_attention(q, k, v, bounds, scale)
        else:
            out = kernel(q, k, v, bounds, int(kwargs["max_length_q"]), scale)
        return out.unsqueeze(0), None

    return attention


def use_varlen_attention(model) -> bool:
    """Switch ``model`` to per-sequence attention over packed rows; False when it cannot be (its
    attention is not pluggable, or this transformers has no registry)."""
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface

        AttentionInterface.register(VARLEN_ATTENTION, varlen_attention(_varlen_kernel()))
        AttentionMaskInterface.register(VARLEN_ATTENTION, lambda *args, **kwargs: None)  # sequences come as bounds
        model.set_attn_implementation(VARLEN_ATTENTION)
    except (ImportError, ValueError, AttributeError) as error:
        # stderr: a caller's stdout may be a report (benchmarks.gpu_throughput --json)
        print(f"varlen attention unavailable ({error}); packed rows use SDPA's block mask", file=sys.stderr, flush=True)
        return False
    return True


def liger_installed() -> bool:
    """Liger's kernels are importable (they need Triton and a GPU to run)."""
    return importlib.util.find_spec("liger_kernel") is not None


def _liger_loss():
    """Liger's fused linear cross-entropy, when installed (CUDA only), else None."""
    if not liger_installed():
        return None
    from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

    return LigerFusedLinearCrossEntropyLoss()


def loss_function(model, fused: bool, compiled: bool) -> Callable[[dict], object]:
    """batch inputs + labels -> mean cross-entropy over the scored tokens, the model's own loss. The
    decoder runs (compiled when asked); the LM head and the loss only at scored positions (Liger's
    fused kernel when ``fused`` and installed). A model that transforms its logits keeps its own loss."""
    import torch
    import torch.nn.functional as F

    if any(getattr(model.config, name, None) for name in LOGIT_TRANSFORMS):
        return lambda inputs, labels: model(**inputs, labels=labels).loss
    decoder, head = model.get_decoder(), model.get_output_embeddings()
    body = torch.compile(decoder, dynamic=True) if compiled else decoder  # packed rows change length every step
    liger = _liger_loss() if fused else None

    def loss(inputs: dict, labels):
        hidden = body(**inputs).last_hidden_state[:, :-1]
        targets = labels[:, 1:]
        scored = targets != -100
        hidden, targets = hidden[scored], targets[scored]
        if liger is not None:
            return liger(head.weight, hidden, targets, head.bias)
        return F.cross_entropy(head(hidden).float(), targets)

    loss.liger = liger is not None  # what train_steps reports as the speed-ups that ran
    return loss


def optimizer_for(model, learning_rate: float, cuda: bool):
    """AdamW (torch's defaults otherwise, as the Trainer recipe used), fused into one kernel on CUDA."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=learning_rate, fused=cuda or None)


def train_steps(model, examples: list[Example], batches: Iterator[list[int]], *, optimizer, schedule, pad_id: int,
                packed: bool = True, accelerate: bool = False, compile: bool = False, should_stop: Callable[[int, float], bool] = lambda s, t: False,
                max_grad_norm: float = 1.0, log_every: int = LOG_EVERY,
                history: list[tuple[int, float]] | None = None, speedups: dict | None = None) -> list[tuple[int, float]]:
    """Train over ``batches`` until they run out or ``should_stop(step, last_step_seconds)``; returns
    (tokens, loss) per step, appended to ``history`` as they come (it survives an interruption).
    ``accelerate``: varlen attention (also used when the model already has it) and Liger (CUDA);
    ``compile``: torch.compile the decoder. If such a step
    fails (before the optimizer step: the weights are untouched), the loop says why (on stderr) and
    redoes it, and every later one, eager with SDPA. ``speedups``, when given, is filled with what
    actually ran: ``packed``, ``varlen``, ``compiled``, ``liger`` as set up, and ``eager_from_step``
    (the first step redone eager, None when none was) with its ``error``."""
    import torch

    device = next(model.parameters()).device
    if accelerate and packed:
        use_varlen_attention(model)
    varlen = packed and model.config._attn_implementation == VARLEN_ATTENTION
    loss_of = loss_function(model, fused=accelerate, compiled=compile)
    multiple = PACK_MULTIPLE_CUDA if compile else 1
    speedups = {} if speedups is None else speedups
    speedups.update(packed=packed, varlen=varlen, compiled=compile, liger=getattr(loss_of, "liger", False),
                    eager_from_step=None, error=None)
    if log_every:
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
        print(f"training on {device} ({name}, CUDA_VISIBLE_DEVICES={visible}): packed={packed} varlen={varlen} "
              f"compile={compile}", flush=True)
    history = [] if history is None else history
    step_seconds = 0.0
    model.train()
    for indices in batches:
        if should_stop(len(history), step_seconds):
            break
        began = time.time()
        chosen = [examples[i] for i in indices]
        batch = pack(chosen, pad_id, multiple) if packed else pad(chosen, pad_id)
        labels = batch["labels"].to(device)
        try:
            loss = loss_of(model_inputs(batch, device, varlen), labels)
            loss.backward()
        except Exception as error:  # noqa: BLE001 - a compiler or kernel failure: train eager rather than not at all
            if not (accelerate or compile):
                raise
            print(f"accelerated step failed ({type(error).__name__}: {error}); training eager", file=sys.stderr, flush=True)
            speedups.update(eager_from_step=len(history), error=f"{type(error).__name__}: {error}")
            optimizer.zero_grad(set_to_none=True)
            if varlen:
                model.set_attn_implementation("sdpa")
            accelerate = compile = varlen = False
            loss_of = loss_function(model, fused=False, compiled=False)
            loss = loss_of(model_inputs(batch, device, varlen), labels)
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        history.append((sum(len(e["input_ids"]) for e in chosen), loss.item()))
        step_seconds = time.time() - began
        if log_every and len(history) % log_every == 0:
            print(f"step {len(history)} loss {history[-1][1]:.4f} ({step_seconds:.2f}s/step)", flush=True)
    return history
