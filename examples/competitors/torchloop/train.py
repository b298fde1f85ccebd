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
    system = row.get(spec.get("field_system") or "", "")
    instruction = row.get(spec["field_instruction"], "")
    given_input = row.get(spec.get("field_input") or "", "")
    prompt = spec["system_format"].format(system=system) if system else ""
    if given_input:
        return prompt + spec["format"].format(instruction=instruction, input=given_input)
    return prompt + spec["no_input_format"].format(instruction=instruction)


def encode(rows: list[dict], spec: dict, tokenizer) -> list[tuple[list[int], list[int]]]:
    """(input ids, labels) per row; labels are -100 over the prompt, so only the output is learned."""
    examples = []
    for row in rows:
        output = str(row.get(spec["field_output"]) or "")
        if not output:
            continue
        prompt = render_prompt(row, spec)
        prompt_ids = tokenizer(prompt)["input_ids"]
        ids = (tokenizer(prompt + output)["input_ids"] + [tokenizer.eos_token_id])[:MAX_LENGTH]
        shared = 0  # BPE may merge across the boundary: the output starts where the two diverge
        while shared < min(len(prompt_ids), len(ids)) and prompt_ids[shared] == ids[shared]:
            shared += 1
        examples.append((ids, [-100] * shared + ids[shared:]))
    return examples


def batches(examples, rng: random.Random, pad_id: int):
    """Endless shuffled batches, right-padded to the longest example in the batch."""
    import torch

    while True:
        order = list(range(len(examples)))
        rng.shuffle(order)
        for start in range(0, len(order), BATCH_SIZE):
            chunk = [examples[i] for i in order[start : start + BATCH_SIZE]]
            width = max(len(ids) for ids, _ in chunk)
            ids = torch.tensor([ids + [pad_id] * (width - len(ids)) for ids, _ in chunk])
            labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in chunk])
            mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in chunk])
            yield ids, labels, mask


def main() -> None:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: STOP_REQUESTED.set())
    deadline = float(os.environ.get("TRAINARENA_DEADLINE", time.time() + args.budget_seconds))
    stop_at = deadline - (1.0 - STOP_FRACTION) * args.budget_seconds

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(args.seed)
    device = torch.device("cuda" if args.devices and torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).to(device)
    with open(args.dataset_spec) as handle:
        spec = json.load(handle)
    with open(args.dataset) as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    stream = batches(encode(rows, spec, tokenizer), random.Random(args.seed), pad_id)

    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.0)
    started, step = time.time(), 0
    model.train()
    while time.time() < stop_at and not STOP_REQUESTED.is_set():
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
        if step % 10 == 0:
            print(f"step {step} loss {loss.item():.4f}", flush=True)
    model.save_pretrained(args.output_dir, safe_serialization=True)
    tokenizer.save_pretrained(args.output_dir)
    print(f"torchloop: {step} steps in {time.time() - started:.1f}s", flush=True)


if __name__ == "__main__":
    main()
