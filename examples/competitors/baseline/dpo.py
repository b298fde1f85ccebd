"""House baseline for DPO tasks: TRL's DPOTrainer against a frozen copy of the base model, with the
platform's beta (so training minimises exactly the scored loss), on the clock like train.py.

Rows are rendered as the scorer renders them (the dataset spec's format strings); TRL then tokenizes
prompt and prompt + completion + eos as the scorer does (see the spec's "scoring" entry).

On a GPU: fused AdamW, and Liger's kernels when installed (fastloop.py). Not used: packing (TRL 1.16
disabled DPO's padding-free mode, and a chosen/rejected pair is scored together) and torch.compile
(every batch has its own padded shape, so a compiled model would recompile step after step)."""

from __future__ import annotations

import json
import time

LEARNING_RATE = 3e-3  # measured on the tiny model, 30 s: 1e-3 -> 0.691, 3e-3 -> 0.683 hidden DPO loss (base 0.693)
BATCH_SIZE = 8  # more, smaller steps in a short budget
MAX_EPOCHS = 4
MAX_LENGTH = 512


def render(row: dict, spec: dict) -> dict[str, str]:
    system = (str(row.get(spec.get("field_system") or "") or "") if spec.get("field_system") else "") or spec.get("system_prompt") or ""
    prefix = spec["system_format"].format(system=system) if system else ""
    prompt = prefix + spec["prompt_format"].format(prompt=row[spec["field_prompt"]]) + spec["response_separator"]
    return {
        "prompt": prompt,
        "chosen": spec["chosen_format"].format(chosen=row[spec["field_chosen"]]),
        "rejected": spec["rejected_format"].format(rejected=row[spec["field_rejected"]]),
    }


def run(args, stop_at: float) -> int:
    """Train and save; returns the optimizer steps taken."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    import fastloop
    from train import budget_callback, load_model, save, time_cosine, train_until_stopped

    spec = json.load(open(args.dataset_spec))
    with open(args.dataset) as handle:
        rows = [render(json.loads(line), spec) for line in handle if line.strip()]
    use_cuda = bool(args.devices) and torch.cuda.is_available()
    model, tokenizer, lora = load_model(args.model, use_cuda)
    reference = None if lora else AutoModelForCausalLM.from_pretrained(args.model, dtype=model.dtype).to(model.device)
    config = DPOConfig(
        output_dir="/tmp/trainarena-baseline-dpo",
        beta=float(spec["scoring"]["beta"]),
        per_device_train_batch_size=BATCH_SIZE,
        num_train_epochs=MAX_EPOCHS,
        max_length=MAX_LENGTH,
        activation_checkpointing=False,
        bf16=model.dtype == torch.bfloat16,
        use_liger_kernel=use_cuda and fastloop.liger_installed(),  # Liger's RMSNorm, RoPE, SwiGLU kernels
        save_strategy="no",
        report_to="none",
        logging_steps=10,
        disable_tqdm=True,
        dataloader_num_workers=0,
        use_cpu=not use_cuda,
        seed=args.seed,
    )
    optimizer = fastloop.optimizer_for(model, LEARNING_RATE, use_cuda)  # fused into one kernel on CUDA
    steps = -(-len(rows) // BATCH_SIZE) * MAX_EPOCHS
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, time_cosine(time.time(), stop_at, steps))
    trainer = DPOTrainer(
        model=model,
        ref_model=reference,
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        optimizers=(optimizer, schedule),
        callbacks=[budget_callback(stop_at)],
    )
    train_until_stopped(trainer, stop_at)
    save(trainer.model, tokenizer, args.output_dir)
    return trainer.state.global_step
