"""trainarena reference competitor: TRL's SFTTrainer with TRL's default SFTConfig, as a naive user runs it.

The point of this script is comparison: it is what you get without a recipe. Every training choice is
TRL's default (learning rate 2e-5, 3 epochs, linear decay without warmup, batch 8, gradient
checkpointing, bf16 where supported, loss on the whole text). It trains on the plain text: each row
rendered with the dataset spec's format strings and its output appended, as one ``text`` column.

Only what the platform's contract forces differs from the defaults:
- checkpoints go to /tmp (a mid-run checkpoint in /output holds pickled optimizer state, which the
  artifact check rejects), and the final model is saved to --output-dir as safetensors;
- no hub, no reporting (the sandbox has no network);
- ``use_cpu`` when the run has no GPU (TrainingArguments refuses the default bf16 on CPU otherwise);
- the budget: training stops at 80% of it (or at SIGTERM) and the model is saved, like every
  example, so the comparison with the house baseline is about the recipe, not the clock.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time

STOP_FRACTION = 0.8  # the same budget handling as the house baseline

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
    deadline = float(os.environ.get("TRAINARENA_DEADLINE", time.time() + budget_seconds))
    return deadline - (1.0 - STOP_FRACTION) * budget_seconds


def render_text(row: dict, spec: dict) -> str:
    """The row as one string: the prompt from the spec's format strings, then the output."""
    system = row.get(spec.get("field_system") or "", "")
    instruction = row.get(spec["field_instruction"], "")
    given_input = row.get(spec.get("field_input") or "", "")
    prompt = spec["system_format"].format(system=system) if system else ""
    if given_input:
        prompt += spec["format"].format(instruction=instruction, input=given_input)
    else:
        prompt += spec["no_input_format"].format(instruction=instruction)
    return prompt + str(row.get(spec["field_output"], ""))


def load_texts(dataset_path: str, spec_path: str) -> list[dict[str, str]]:
    with open(spec_path) as handle:
        spec = json.load(handle)
    with open(dataset_path) as handle:
        return [{"text": render_text(json.loads(line), spec)} for line in handle if line.strip()]


def budget_callback(stop_at: float):
    from transformers import TrainerCallback

    class StopOnBudget(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if STOP_REQUESTED.is_set() or time.time() >= stop_at:
                control.should_training_stop = True

    return StopOnBudget()


def main() -> None:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: STOP_REQUESTED.set())
    stop_at = stop_time(args.budget_seconds)

    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    config = SFTConfig(
        output_dir="/tmp/trainarena-trl-defaults",  # forced: checkpoints must not land in /output
        report_to="none",  # forced: no network
        push_to_hub=False,  # forced: no network
        seed=args.seed,  # the platform's seed, as any script should use
        use_cpu=not args.devices,  # forced on a CPU-only run: TRL's default bf16 is refused without it
    )
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    trainer = SFTTrainer(
        model=args.model,  # TRL loads it with its defaults
        args=config,
        train_dataset=Dataset.from_list(load_texts(args.dataset, args.dataset_spec)),
        processing_class=tokenizer,
        callbacks=[budget_callback(stop_at)],
    )
    if time.time() < stop_at and not STOP_REQUESTED.is_set():
        trainer.train()
    trainer.model.save_pretrained(args.output_dir, safe_serialization=True)
    tokenizer.save_pretrained(args.output_dir)
    print(f"trl_defaults: saved after {trainer.state.global_step} steps", flush=True)


if __name__ == "__main__":
    main()
