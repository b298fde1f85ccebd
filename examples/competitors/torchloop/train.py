"""trainarena example competitor: a plain PyTorch loop, no TRL, full fine-tune.

Its edge is start-up time: it imports only torch and transformers' model classes (TRL pulls in
datasets, accelerate and pandas, seconds on a small machine), so more of a short budget goes to
training. Prompt-masked completion loss on the spec's rendering, AdamW, warmup then a linear decay
driven by the clock, stop at 85% of the budget or at SIGTERM, save as safetensors.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import threading
import time

STOP_FRACTION = 0.85  # a step here is short and the save is one file: a smaller reserve suffices
LEARNING_RATE = 5e-4
WARMUP_STEPS = 10
BATCH_SIZE = 16
MAX_LENGTH = 512

STOP_REQUESTED = threading.Event()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task-type", required=True, choices=["instruct"])
    parser.add_argument("--model", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--dataset-spec", required=True)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--budget-seconds", type=float, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--devices", default="")
    args, _later_contract_arguments = parser.parse_known_args()
    return args


def render_prompt(row: dict, spec: dict) -> str:
    """The prompt exactly as the scorer renders it (see the spec's "scoring" entry): system text (the
    row's, else the spec's system_prompt), the instruction with or without input, the separator."""

    def text(column: str | None) -> str:
        return "" if not column or row.get(column) is None else str(row[column])

    instruction, given_input = text(spec["field_instruction"]), text(spec.get("field_input"))
    if given_input.strip():
        user = spec["format"].format(instruction=instruction, input=given_input)
    else:
        user = spec["no_input_format"].format(instruction=instruction)
    system = text(spec.get("field_system")) or spec.get("system_prompt") or ""
    prefix = spec["system_format"].format(system=system) if system else ""
    return prefix + user + spec.get("response_separator", "")


def encode(tokenizer, prompt: str, completion: str) -> dict[str, list[int]]:
    """Tokenized as the scorer does: prompt with special tokens (BOS), completion without, then EOS;
    prompt labels masked. Too long: prompt tokens go first, from the left."""
    prompt_ids = tokenizer(prompt)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    overflow = len(prompt_ids) + len(completion_ids) - MAX_LENGTH
    if overflow > 0:
        prompt_ids = prompt_ids[min(overflow, len(prompt_ids) - 1) :]
        completion_ids = completion_ids[: MAX_LENGTH - len(prompt_ids)]
    return {"input_ids": prompt_ids + completion_ids, "labels": [-100] * len(prompt_ids) + completion_ids}


def load_examples(dataset_path: str, spec_path: str, tokenizer) -> list[dict[str, list[int]]]:
    with open(spec_path) as handle:
        spec = json.load(handle)
    with open(dataset_path) as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    outputs = [(row, row.get(spec["field_output"])) for row in rows]
    return [encode(tokenizer, render_prompt(row, spec), str(out)) for row, out in outputs if out is not None and str(out)]


def batches(examples, rng: random.Random, pad_id: int):
    """Endless shuffled batches, right-padded to the longest example in the batch."""
    import torch

    while True:
        order = list(range(len(examples)))
        rng.shuffle(order)
        for start in range(0, len(order), BATCH_SIZE):
            chunk = [examples[i] for i in order[start : start + BATCH_SIZE]]
            width = max(len(e["input_ids"]) for e in chunk)
            ids = torch.tensor([e["input_ids"] + [pad_id] * (width - len(e["input_ids"])) for e in chunk])
            labels = torch.tensor([e["labels"] + [-100] * (width - len(e["labels"])) for e in chunk])
            mask = torch.tensor([[1] * len(e["input_ids"]) + [0] * (width - len(e["input_ids"])) for e in chunk])
            yield ids, labels, mask


def main() -> None:
    args = parse_args()
    # Idle OpenMP threads sleep instead of spinning: on a shared or busy CPU, spinning threads made steps
    # ~20x slower (measured: 0.2 vs 5 steps/s on 2 cores); on a dedicated machine it costs nothing.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    signal.signal(signal.SIGTERM, lambda *_: STOP_REQUESTED.set())
    deadline = float(os.environ.get("TRAINARENA_DEADLINE", time.time() + args.budget_seconds))
    stop_at = deadline - (1.0 - STOP_FRACTION) * args.budget_seconds

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(args.seed)
    device = torch.device("cuda" if args.devices and torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).to(device)
    examples = load_examples(args.dataset, args.dataset_spec, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    stream = batches(examples, random.Random(args.seed), pad_id)

    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.0)
    started, step, step_seconds = time.time(), 0, 0.0
    model.train()
    while time.time() + step_seconds < stop_at and not STOP_REQUESTED.is_set():
        step_began = time.time()
        remaining = max(0.0, (stop_at - time.time()) / max(stop_at - started, 1e-6))
        for group in optimizer.param_groups:  # warmup, then linear decay to zero at the stop time
            group["lr"] = LEARNING_RATE * min(1.0, (step + 1) / WARMUP_STEPS) * remaining
        ids, labels, mask = (t.to(device) for t in next(stream))
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        step_seconds = time.time() - step_began if step >= 2 else 0.0  # the next step lasts about as long
        if step % 10 == 0:
            print(f"step {step} loss {loss.item():.4f}", flush=True)
    model.save_pretrained(args.output_dir, safe_serialization=True)
    tokenizer.save_pretrained(args.output_dir)
    print(f"torchloop: {step} steps in {time.time() - started:.1f}s", flush=True)


if __name__ == "__main__":
    main()
