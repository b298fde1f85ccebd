"""Example competitor that supports instruct tasks only: a plain PyTorch full fine-tune on the completion
tokens, stopping at 70% of its budget. Its trainarena.toml declares task_types = ["instruct"], so the
platform does not start it on other task types; started by hand on one, it exits with a clear message."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

STOP_FRACTION = 0.7
LEARNING_RATE = 5e-4
BATCH_SIZE = 16


def render_prompt(row: dict, spec: dict) -> str:
    def text(column):
        return "" if not column or row.get(column) is None else str(row[column])

    given = text(spec.get("field_input"))
    user = spec["format"].format(instruction=text(spec["field_instruction"]), input=given) if given.strip() else spec["no_input_format"].format(instruction=text(spec["field_instruction"]))
    system = text(spec.get("field_system")) or spec.get("system_prompt") or ""
    return (spec["system_format"].format(system=system) if system else "") + user + spec["response_separator"]


def batches(tokenizer, rows: list[dict], spec: dict):
    import torch

    encoded = []
    for row in rows:
        prompt = tokenizer(render_prompt(row, spec))["input_ids"]
        completion = tokenizer(str(row[spec["field_output"]]), add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        encoded.append((prompt + completion, [-100] * len(prompt) + completion))
    while True:
        for start in range(0, len(encoded), BATCH_SIZE):
            chunk = encoded[start : start + BATCH_SIZE]
            width = max(len(ids) for ids, _ in chunk)
            yield (
                torch.tensor([ids + [tokenizer.pad_token_id] * (width - len(ids)) for ids, _ in chunk]),
                torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in chunk]),
                torch.tensor([labels + [-100] * (width - len(labels)) for _, labels in chunk]),
            )


def main() -> int:
    parser = argparse.ArgumentParser()
    for name in ("--task-type", "--model", "--dataset", "--dataset-spec", "--output-dir"):
        parser.add_argument(name, required=True)
    parser.add_argument("--budget-seconds", type=float, required=True)
    args, _ = parser.parse_known_args()
    if args.task_type != "instruct":
        print(f"instruct_only: this script supports instruct tasks only, not {args.task_type}", file=sys.stderr)
        return 2
    stop_at = float(os.environ.get("TRAINARENA_DEADLINE", time.time() + args.budget_seconds)) - (1 - STOP_FRACTION) * args.budget_seconds
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "0")) or torch.get_num_threads())
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model)
    spec = json.load(open(args.dataset_spec))
    rows = [json.loads(line) for line in open(args.dataset) if line.strip()]
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    model.train()
    steps = 0
    for input_ids, attention, labels in batches(tokenizer, rows, spec):
        if time.time() >= stop_at:
            break
        model(input_ids=input_ids, attention_mask=attention, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        steps += 1
    model.save_pretrained(args.output_dir, safe_serialization=True)
    tokenizer.save_pretrained(args.output_dir)
    print(f"instruct_only: {steps} steps", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
