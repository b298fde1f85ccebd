"""The "TRL defaults" reference for the dpo, grpo and chat quality benchmark: a contract-style script
that trains with TRL's trainers and their default hyperparameters (learning rate, batch size, ...),
changing only what a run must change: stop on the clock, no checkpoints, no reporting, and the data
rendered as the dataset spec says (the house baseline's own renderers, so that only the recipe differs).

Run by ``benchmarks.quality`` (the chat, dpo and grpo defaults reference) as ``python benchmarks/trl_defaults_types.py <contract arguments>``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

BASELINE = Path(__file__).resolve().parent.parent / "examples" / "competitors" / "baseline"
STOP_FRACTION = 0.8


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("--task-type", "--model", "--dataset", "--dataset-spec", "--output-dir"):
        parser.add_argument(name, required=True)
    parser.add_argument("--budget-seconds", type=float, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args, _ = parser.parse_known_args()
    deadline = float(os.environ.get("TRAINARENA_DEADLINE", time.time() + args.budget_seconds))
    stop_at = deadline - (1 - STOP_FRACTION) * args.budget_seconds
    sys.path.insert(0, str(BASELINE))
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "0")) or torch.get_num_threads())
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model)
    spec = json.loads(Path(args.dataset_spec).read_text())
    raw = [json.loads(line) for line in Path(args.dataset).read_text().splitlines() if line.strip()]

    class Clock(TrainerCallback):
        def on_step_end(self, _args, state, control, **kwargs):
            control.should_training_stop = time.time() >= stop_at

    common = dict(output_dir="/tmp/trl-defaults-types", save_strategy="no", report_to="none", use_cpu=True,
                  disable_tqdm=True, activation_checkpointing=False, seed=args.seed)
    if args.task_type == "dpo":
        import dpo
        from trl import DPOConfig, DPOTrainer

        trainer = DPOTrainer(model=model, args=DPOConfig(**common), processing_class=tokenizer,
                             train_dataset=Dataset.from_list([dpo.render(r, spec) for r in raw]), callbacks=[Clock()])
    elif args.task_type == "grpo":
        import grpo
        from trl import GRPOConfig, GRPOTrainer

        extra = spec.get("field_extra")
        rows = [{"prompt": grpo.render_prompt(r, spec), **({extra: r[extra]} if extra else {})} for r in raw]
        tokenizer.padding_side = "left"
        trainer = GRPOTrainer(model=model, reward_funcs=grpo.reward_functions(spec), args=GRPOConfig(**common),
                              processing_class=tokenizer, train_dataset=Dataset.from_list(rows), callbacks=[Clock()])
    else:
        import chat
        from trl import SFTConfig, SFTTrainer

        examples = [chat.encode(tokenizer, chat.messages_of(r, spec), 1024) for r in raw]
        trainer = SFTTrainer(model=model, args=SFTConfig(**common), processing_class=tokenizer,
                             train_dataset=Dataset.from_list(examples), callbacks=[Clock()])
    if time.time() < stop_at:
        trainer.train()
    tokenizer.padding_side = "right"
    trainer.model.save_pretrained(args.output_dir, safe_serialization=True)
    tokenizer.save_pretrained(args.output_dir)
    print(f"trl-defaults-{args.task_type}: {trainer.state.global_step} steps", flush=True)


if __name__ == "__main__":
    main()
