"""trainarena house baseline for instruct tasks: a packed SFT loop, completion-only loss, on-the-clock.

What it does, and why:
- Renders and tokenizes every row exactly as the scorer does (the dataset spec's format strings and
  its "scoring" entry) and trains on the completion only: the prompt is masked, as in the evaluation.
- The loop (fastloop.py) packs each step's examples into one row, with no padding, and computes
  logits only where a completion token is predicted; on a GPU it also compiles the decoder, fuses
  AdamW and runs varlen attention (and Liger's fused loss, when installed). It imports no TRL.
- Full fine-tune for small models (it beats LoRA there), LoRA for large ones (memory).
- The clock, not an epoch count, drives the run: training stops at STOP_FRACTION of the budget,
  measured from the deadline the platform sets, and the learning rate follows warmup + cosine over
  that window, so the schedule finishes whatever the machine's speed.
- A step that would end past the stop time is not started; SIGTERM ends training where it is; the
  model is always saved, as safetensors.

Run: python train.py --task-type instruct --model M --dataset D --dataset-spec S --output-dir O
     --budget-seconds B --seed N --devices D   (TRAINARENA_DEADLINE in the environment).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
import threading
import time

# Tuned on the demo's 30 s budgets, 3 seeds (docs/benchmarks.md, "Instruct and chat: what was tried").
STOP_FRACTION = 0.8  # saving and exit fit in the rest; 88% gained ~1% on one seed but leaves 3.6 s of 30
FULL_FINETUNE_MAX_PARAMS = 1_000_000_000  # above this, LoRA (memory); below, full: LoRA r2 lost 2x on 2.2M
LEARNING_RATE_FULL = 1e-3  # beat 5e-4 (torchloop's) and 3e-3 (hotlr's; unstable) on arithmetic and strings
LEARNING_RATE_LORA = 2e-4
MIN_LR_RATIO = 0.05  # the cosine ends at 5% of the peak rather than 0: the last steps still learn
WARMUP_STEPS = 10  # ~4% of the ~200-230 steps a 30 s demo slot gives a tiny model on one core
MAX_EPOCHS = 6  # chat reaches it (204 steps); a cap of 10 was no better there
BATCH_SIZE = 16  # batch 8 (twice the steps) was within noise on one seed
# torch.compile on a GPU only with at least this much training time left: compiling a large model
# takes a minute or more, which a short run never earns back (and on a CPU it is never worth it).
COMPILE_MIN_SECONDS = 300
MAX_LENGTH = 512

# Task types trained by the module of the same name beside this file (dpo.py, grpo.py, chat.py); each
# has run(args, stop_at) -> steps and reuses this file's clock, SIGTERM handling, loading and saving.
OTHER_TYPES = ("dpo", "grpo", "chat")

OUTCOME_FILE = "trainarena_outcome.json"  # docs/contract.md: the platform reads it beside the weights
STOP_REQUESTED = threading.Event()  # set by SIGTERM
# What a type's run says of the model it saved (GRPO's guard keeping the base weights): the last stdout
# line carries it, and stderr too, whose tail `trainarena runs show` prints, so a score equal to the base
# model's reads as a choice, not a failure.
SAVED_NOTES: list[str] = []
TRAINING = threading.Event()  # set while a training loop runs


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task-type", required=True, choices=["instruct", *OTHER_TYPES])
    parser.add_argument("--model", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--dataset-spec", required=True)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--budget-seconds", type=float, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--devices", default="")
    args, _later_contract_arguments = parser.parse_known_args()
    return args


def stop_time(budget_seconds: float) -> float:
    """Unix time at which training stops: STOP_FRACTION of the budget after the run started."""
    deadline = float(os.environ.get("TRAINARENA_DEADLINE", time.time() + budget_seconds))
    return deadline - (1.0 - STOP_FRACTION) * budget_seconds


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
    """Pre-tokenized examples: TRL uses the ``labels`` column as it is, so training sees what is scored."""
    with open(spec_path) as handle:
        spec = json.load(handle)
    examples = []
    with open(dataset_path) as handle:
        for line in handle:
            row = json.loads(line) if line.strip() else {}
            output = row.get(spec["field_output"])
            if output is not None and str(output):
                examples.append(encode(tokenizer, render_prompt(row, spec), str(output)))
    return examples


def time_cosine(started: float, stop_at: float, max_steps: int):
    """LR multiplier: linear warmup over steps, cosine over whichever comes first, the clock or the steps."""

    def multiplier(step: int) -> float:
        warmup = min(1.0, (step + 1) / WARMUP_STEPS)
        progress = min(1.0, max((time.time() - started) / max(stop_at - started, 1e-6), step / max_steps))
        return warmup * (MIN_LR_RATIO + (1 - MIN_LR_RATIO) * 0.5 * (1 + math.cos(math.pi * progress)))

    return multiplier


class StopTraining(BaseException):
    """Raised by the SIGTERM handler while training runs: a step can take seconds, the grace period is short."""


def on_sigterm(*_) -> None:
    STOP_REQUESTED.set()
    if TRAINING.is_set():
        TRAINING.clear()
        raise StopTraining


@contextlib.contextmanager
def interruptible():
    """The block is a training loop that SIGTERM ends where it is (the model is saved after it)."""
    TRAINING.set()
    try:
        yield
    except StopTraining:
        print("SIGTERM: training stopped, saving", flush=True)
    finally:
        TRAINING.clear()


def load_model(path: str, use_cuda: bool):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = torch.bfloat16 if use_cuda and torch.cuda.is_bf16_supported() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    if use_cuda:
        model.to("cuda")
    lora = model.num_parameters() > FULL_FINETUNE_MAX_PARAMS
    if lora:
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
        model = get_peft_model(model, config)
    return model, tokenizer, lora


def train(args: argparse.Namespace, stop_at: float) -> int:
    """Train and save; returns the number of optimizer steps taken."""
    import torch

    use_cuda = bool(args.devices) and torch.cuda.is_available()
    model, tokenizer, lora = load_model(args.model, use_cuda)
    examples = load_examples(args.dataset, args.dataset_spec, tokenizer)
    steps = train_examples(model, tokenizer, examples, LEARNING_RATE_LORA if lora else LEARNING_RATE_FULL,
                           stop_at, args.seed, use_cuda)
    save(model, tokenizer, args.output_dir)
    return steps


def train_examples(model, tokenizer, examples, learning_rate: float, stop_at: float, seed: int, use_cuda: bool) -> int:
    """The SFT recipe on pre-tokenized examples (fastloop.py: packed, and on CUDA compiled and fused):
    BATCH_SIZE examples a step for up to MAX_EPOCHS, AdamW, warmup + cosine on the clock, gradients
    clipped at 1; stops before a step that would end past ``stop_at``, or at SIGTERM. Returns the steps."""
    import fastloop
    import torch

    optimizer = fastloop.optimizer_for(model, learning_rate, use_cuda)
    max_steps = math.ceil(len(examples) / BATCH_SIZE) * MAX_EPOCHS
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, time_cosine(time.time(), stop_at, max_steps))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    history: list = []

    def should_stop(step: int, step_seconds: float) -> bool:
        # the next step lasts about as long as the last one (the first, slowed by set-up, is no estimate)
        return STOP_REQUESTED.is_set() or time.time() + (step_seconds if step >= 2 else 0.0) >= stop_at

    if time.time() >= stop_at or STOP_REQUESTED.is_set():
        return 0
    with interruptible():
        fastloop.train_steps(model, examples, fastloop.step_batches(len(examples), BATCH_SIZE, seed, MAX_EPOCHS),
                             optimizer=optimizer, schedule=schedule, pad_id=pad_id, accelerate=use_cuda,
                             compile=use_cuda and stop_at - time.time() >= COMPILE_MIN_SECONDS,
                             should_stop=should_stop, history=history)
    return len(history)


def save(model, tokenizer, output_dir: str, same_as_base: str | None = None) -> None:
    """A merged-free save: a full model directory, or a PEFT adapter directory; safetensors only. With
    ``same_as_base`` (why), the weights are the base model's unchanged, and the contract's outcome file
    says so (docs/contract.md, "/output/trainarena_outcome.json"): the model card and the job tell the
    customer, who would otherwise not know that training changed nothing."""
    model.save_pretrained(output_dir, safe_serialization=True)
    tokenizer.save_pretrained(output_dir)
    if same_as_base is not None:
        say_same_as_base(output_dir, same_as_base)


def say_same_as_base(output_dir: str, why: str) -> None:
    """Write the contract's outcome file: the weights saved in ``output_dir`` are the base model's."""
    with open(os.path.join(output_dir, OUTCOME_FILE), "w", encoding="utf-8") as handle:
        json.dump({"same_as_base": True, "why": why}, handle)


def main() -> None:
    args = parse_args()
    # Idle OpenMP threads sleep instead of spinning: on a shared or busy CPU, spinning threads made steps
    # ~20x slower (measured: 0.2 vs 5 steps/s on 2 cores); on a dedicated machine it costs nothing.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # Installed before the heavy imports: a SIGTERM during them still ends in a save.
    signal.signal(signal.SIGTERM, on_sigterm)
    stop_at = stop_time(args.budget_seconds)
    import torch

    torch.manual_seed(args.seed)
    if args.task_type == "instruct":
        steps = train(args, stop_at)
    else:
        import importlib

        steps = importlib.import_module(args.task_type).run(args, stop_at)
    if not steps:  # nothing trained: what is saved is the base model, and the outcome file says so
        SAVED_NOTES.append("kept the base model: no training step fitted in the budget")
        if os.path.isdir(args.output_dir):
            say_same_as_base(args.output_dir, "no training step fitted in the budget")
    for note in SAVED_NOTES:
        print(note, file=sys.stderr, flush=True)
    print("; ".join([f"baseline: {steps} steps, saved {time.time() - stop_at:+.1f}s from the stop time", *SAVED_NOTES]), flush=True)


if __name__ == "__main__":
    main()
