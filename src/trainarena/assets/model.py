"""A tiny LLaMA-architecture causal LM, initialised from a seed and pre-trained briefly on offline text
so that fine-tuning starts from a model that knows the vocabulary but not the tasks."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TinyLlamaShape:
    hidden_size: int = 192  # ~2.2M parameters with a 3k vocabulary: a CPU fine-tunes it in seconds
    intermediate_size: int = 512
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2  # grouped-query attention, as in real LLaMA checkpoints
    max_position_embeddings: int = 512


@dataclass(frozen=True)
class PretrainPlan:
    max_steps: int = 60  # a fixed step count, so the same seed gives the same weights
    seconds: float = 60.0  # safety cap for an overloaded machine; the manifest records if it cut training short
    batch_size: int = 8
    seq_len: int = 64
    learning_rate: float = 2e-3
    warmup_steps: int = 20


def build_model(tokenizer, shape: TinyLlamaShape, seed: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads,
        max_position_embeddings=shape.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def pretrain(model, token_ids: list[int], plan: PretrainPlan, seed: int) -> dict[str, float]:
    """Next-token training on random windows of one long token stream. Stops at ``max_steps`` or at the
    time budget, whichever comes first (the time cap keeps slow machines within the build budget; on
    those the weights then depend on speed, which the returned ``steps`` records)."""
    import torch

    # One thread: the same reduction order on every machine (same seed -> same weights), and on a
    # shared 2-core machine OpenMP's spinning threads made two threads ~7x slower than one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _pretrain_loop(model, token_ids, plan, seed)
    finally:
        torch.set_num_threads(threads)


def _pretrain_loop(model, token_ids: list[int], plan: PretrainPlan, seed: int) -> dict[str, float]:
    import torch

    generator = torch.Generator().manual_seed(seed)
    stream = torch.tensor(token_ids, dtype=torch.long)
    optimizer = torch.optim.AdamW(model.parameters(), lr=plan.learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / plan.warmup_steps) * max(0.1, 1 - step / plan.max_steps)
    )
    model.train()
    start, step, first_loss, loss_value = time.monotonic(), 0, float("nan"), float("nan")
    while step < plan.max_steps and time.monotonic() - start < plan.seconds:
        offsets = torch.randint(0, len(stream) - plan.seq_len - 1, (plan.batch_size,), generator=generator)
        batch = torch.stack([stream[o : o + plan.seq_len] for o in offsets.tolist()])
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        loss_value = loss.item()
        first_loss = loss_value if step == 0 else first_loss
        step += 1
    model.eval()
    return {"steps": step, "first_loss": first_loss, "last_loss": loss_value, "seconds": time.monotonic() - start}


def save_model(model, tokenizer, directory: Path) -> None:
    from transformers.utils import logging

    logging.disable_progress_bar()  # the builder prints its own summary
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
