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

STOP_REQUESTED = threading.Event()  # set by SIGTERM
TRAINING = threading.Event()  # set while trainer.train() runs


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


def render_text(row: dict, spec: dict) -> str:
    """The row as one string: the spec's prompt, then the output."""
    return render_prompt(row, spec) + str(row.get(spec["field_output"]) or "")


def load_texts(dataset_path: str, spec_path: str) -> list[dict[str, str]]:
    with open(spec_path) as handle:
        spec = json.load(handle)
    with open(dataset_path) as handle:
        return [{"text": render_text(json.loads(line), spec)} for line in handle if line.strip()]


class StopTraining(BaseException):
    """Raised by the SIGTERM handler while training runs: a step can take seconds, the grace period is short."""


def on_sigterm(*_) -> None:
    STOP_REQUESTED.set()
    if TRAINING.is_set():
        TRAINING.clear()
        raise StopTraining


def budget_callback(stop_at: float):
    from transformers import TrainerCallback

    class StopOnBudget(TrainerCallback):
        """Stops before a step that would end past ``stop_at``, assuming it lasts as long as the last one
        (the first step, slowed by one-time set-up, is not used as an estimate)."""

        def on_train_begin(self, args, state, control, **kwargs):
            self.step_ended, self.step_seconds = time.time(), 0.0

        def on_step_end(self, args, state, control, **kwargs):
            now = time.time()
            self.step_seconds, self.step_ended = now - self.step_ended, now
            predicted_end = now + (self.step_seconds if state.global_step >= 2 else 0.0)
            if STOP_REQUESTED.is_set() or predicted_end >= stop_at:
                control.should_training_stop = True

    return StopOnBudget()


def train_until_stopped(trainer, stop_at: float) -> None:
    """Train unless the budget is already spent; a SIGTERM ends training where it is (the weights
    stay usable: at worst one optimizer update is partly applied)."""
    if time.time() >= stop_at or STOP_REQUESTED.is_set():
        return
    TRAINING.set()
    try:
        trainer.train()
    except StopTraining:
        print("SIGTERM: training stopped, saving", flush=True)
    finally:
        TRAINING.clear()


def main() -> None:
    args = parse_args()
    # Idle OpenMP threads sleep instead of spinning: on a shared or busy CPU, spinning threads made steps
    # ~20x slower (measured: 0.2 vs 5 steps/s on 2 cores); on a dedicated machine it costs nothing.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    signal.signal(signal.SIGTERM, on_sigterm)
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
    train_until_stopped(trainer, stop_at)
    trainer.model.save_pretrained(args.output_dir, safe_serialization=True)
    tokenizer.save_pretrained(args.output_dir)
    print(f"trl_defaults: saved after {trainer.state.global_step} steps", flush=True)


if __name__ == "__main__":
    main()
