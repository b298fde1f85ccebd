"""trainarena house baseline for instruct tasks: TRL SFTTrainer, completion-only loss, on-the-clock.

What it does, and why:
- Renders every row with the dataset spec's own format strings (the hidden split is scored with the
  same rendering) and trains on the completion only: the prompt is masked, as in the evaluation.
- Full fine-tune for small models (it beats LoRA there), LoRA for large ones (memory).
- The clock, not an epoch count, drives the run: training stops at STOP_FRACTION of the budget,
  measured from the deadline the platform sets, and the learning rate follows warmup + cosine over
  that window, so the schedule finishes whatever the machine's speed.
- SIGTERM stops training at the next step; the model is always saved, as safetensors.

Run: python train.py --task-type instruct --model M --dataset D --dataset-spec S --output-dir O
     --budget-seconds B --seed N --devices D   (TRAINARENA_DEADLINE in the environment).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import threading
import time

STOP_FRACTION = 0.8  # stop at 80% of the budget: saving and exit must fit in the rest
FULL_FINETUNE_MAX_PARAMS = 1_000_000_000  # above this, LoRA (a full fine-tune would not fit in memory)
LEARNING_RATE_FULL = 1e-3  # tiny models fine-tuned in seconds want a high rate; cosine takes it down
LEARNING_RATE_LORA = 2e-4
MIN_LR_RATIO = 0.05  # the cosine ends at 5% of the peak rather than 0: the last steps still learn
WARMUP_STEPS = 10
MAX_EPOCHS = 6  # beyond this the small synthetic splits start to overfit
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


def stop_time(budget_seconds: float) -> float:
    """Unix time at which training stops: STOP_FRACTION of the budget after the run started."""
    deadline = float(os.environ.get("TRAINARENA_DEADLINE", time.time() + budget_seconds))
    return deadline - (1.0 - STOP_FRACTION) * budget_seconds


def render_prompt(row: dict, spec: dict) -> str:
    """The prompt exactly as the evaluator renders it: system, then instruction (+ input) formats."""
    system = row.get(spec.get("field_system") or "", "") or spec.get("system_prompt") or ""
    instruction = row.get(spec["field_instruction"], "")
    given_input = row.get(spec.get("field_input") or "", "")
    prompt = spec.get("system_format", "{system}").format(system=system) if system else ""
    if given_input:
        return prompt + spec.get("format", "{instruction} {input}").format(instruction=instruction, input=given_input)
    return prompt + spec.get("no_input_format", "{instruction}").format(instruction=instruction)


def load_examples(dataset_path: str, spec_path: str) -> list[dict[str, str]]:
    """Prompt/completion pairs; TRL masks the prompt and appends EOS to the completion."""
    with open(spec_path) as handle:
        spec = json.load(handle)
    examples = []
    with open(dataset_path) as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                output = row.get(spec["field_output"])
                if output:
                    examples.append({"prompt": render_prompt(row, spec), "completion": str(output)})
    return examples


def time_cosine(started: float, stop_at: float, max_steps: int):
    """LR multiplier: linear warmup over steps, cosine over whichever comes first, the clock or the steps."""

    def multiplier(step: int) -> float:
        warmup = min(1.0, (step + 1) / WARMUP_STEPS)
        progress = min(1.0, max((time.time() - started) / max(stop_at - started, 1e-6), step / max_steps))
        return warmup * (MIN_LR_RATIO + (1 - MIN_LR_RATIO) * 0.5 * (1 + math.cos(math.pi * progress)))

    return multiplier


def budget_callback(stop_at: float):
    from transformers import TrainerCallback

    class StopOnBudget(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if STOP_REQUESTED.is_set() or time.time() >= stop_at:
                control.should_training_stop = True

    return StopOnBudget()


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


def train(args: argparse.Namespace, stop_at: float) -> None:
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    use_cuda = bool(args.devices) and torch.cuda.is_available()
    model, tokenizer, lora = load_model(args.model, use_cuda)
    examples = load_examples(args.dataset, args.dataset_spec)
    steps_per_epoch = math.ceil(len(examples) / BATCH_SIZE)
    config = SFTConfig(
        output_dir="/tmp/trainarena-baseline",  # checkpoints are never written: only the final save
        per_device_train_batch_size=BATCH_SIZE,
        num_train_epochs=MAX_EPOCHS,
        max_length=MAX_LENGTH,
        completion_only_loss=True,
        train_sampling_strategy="group_by_length",  # little padding without packing across examples
        gradient_checkpointing=False,  # small batches: memory is not the limit, speed is
        bf16=model.dtype == torch.bfloat16,
        max_grad_norm=1.0,
        weight_decay=0.0,
        save_strategy="no",
        report_to="none",
        logging_steps=10,
        disable_tqdm=True,
        dataloader_num_workers=0,
        use_cpu=not use_cuda,
        seed=args.seed,
        data_seed=args.seed,
    )
    learning_rate = LEARNING_RATE_LORA if lora else LEARNING_RATE_FULL
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, time_cosine(time.time(), stop_at, steps_per_epoch * MAX_EPOCHS)
    )
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(examples),
        processing_class=tokenizer,
        optimizers=(optimizer, schedule),
        callbacks=[budget_callback(stop_at)],
    )
    if time.time() < stop_at and not STOP_REQUESTED.is_set():
        trainer.train()
    save(trainer.model, tokenizer, args.output_dir)


def save(model, tokenizer, output_dir: str) -> None:
    """A merged-free save: a full model directory, or a PEFT adapter directory; safetensors only."""
    model.save_pretrained(output_dir, safe_serialization=True)
    tokenizer.save_pretrained(output_dir)


def main() -> None:
    args = parse_args()
    # Installed before the heavy imports: a SIGTERM during them still ends in a save.
    signal.signal(signal.SIGTERM, lambda *_: STOP_REQUESTED.set())
    stop_at = stop_time(args.budget_seconds)
    import torch

    torch.manual_seed(args.seed)
    started = time.time()
    train(args, stop_at)
    print(f"baseline: trained and saved in {time.time() - started:.1f}s", flush=True)


if __name__ == "__main__":
    main()
