"""House baseline for GRPO tasks: TRL's GRPOTrainer with the task's own reward functions and weights,
the platform's KL coefficient as beta and its sampling settings, on the clock like train.py.

The reward functions arrive as Python source in the dataset spec; they are exec'd here, inside this
run's sandbox (the platform itself never runs them outside one).

On a GPU: fused AdamW, and Liger's kernels when installed (fastloop.py). Not used: packing (a step's
time goes to generating the completions, which are sampled padded, not to the loss) and torch.compile
(generation and training alternate with a new sequence length each time: it would recompile)."""

from __future__ import annotations

import json
import time

LEARNING_RATE = 1e-4
PROMPTS_PER_STEP = 4
GENERATIONS = 4  # completions per prompt: the group GRPO normalises rewards within
STEP_MARGIN_SECONDS = 2.0  # a GRPO step (generation included) is long: stop one step earlier than SFT


def reward_functions(spec: dict) -> list:
    functions = []
    for entry in spec["reward_functions"]:
        namespace: dict = {"__name__": "reward_" + entry["name"]}
        exec(compile(entry["source"], f"<reward {entry['name']}>", "exec"), namespace)  # noqa: S102 - sandboxed run
        functions.append(namespace[entry["name"]])
    return functions


def render_prompt(row: dict, spec: dict) -> str:
    system = spec.get("system_prompt") or ""
    prefix = spec["system_format"].format(system=system) if system else ""
    return prefix + spec["prompt_format"].format(prompt=row[spec["field_prompt"]]) + spec["response_separator"]


def run(args, stop_at: float) -> int:
    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    import fastloop
    from train import budget_callback, load_model, save, time_cosine, train_until_stopped

    spec = json.load(open(args.dataset_spec))
    extra = spec.get("field_extra")
    with open(args.dataset) as handle:
        raw = [json.loads(line) for line in handle if line.strip()]
    rows = [{"prompt": render_prompt(r, spec), **({extra: r.get(extra, "")} if extra else {})} for r in raw]
    sampling = spec["scoring"]["sampling"]
    use_cuda = bool(args.devices) and torch.cuda.is_available()
    model, tokenizer, _lora = load_model(args.model, use_cuda)
    tokenizer.padding_side = "left"  # generation pads on the left
    config = GRPOConfig(
        output_dir="/tmp/trainarena-baseline-grpo",
        learning_rate=LEARNING_RATE,
        per_device_train_batch_size=PROMPTS_PER_STEP * GENERATIONS,
        num_generations=GENERATIONS,
        max_completion_length=int(sampling["max_new_tokens"]),
        temperature=float(sampling["temperature"]),
        top_p=float(sampling["top_p"]),
        beta=float(spec["scoring"]["kl_coef"]),
        reward_weights=[float(f["weight"]) for f in spec["reward_functions"]],
        activation_checkpointing=False,
        bf16=model.dtype == torch.bfloat16,
        use_liger_kernel=use_cuda and fastloop.liger_installed(),  # Liger's RMSNorm, RoPE, SwiGLU kernels
        num_train_epochs=1,
        save_strategy="no",
        report_to="none",
        logging_steps=10,
        disable_tqdm=True,
        dataloader_num_workers=0,
        use_cpu=not use_cuda,
        seed=args.seed,
    )
    optimizer = fastloop.optimizer_for(model, LEARNING_RATE, use_cuda)  # fused into one kernel on CUDA
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, time_cosine(time.time(), stop_at, max(1, len(rows) // PROMPTS_PER_STEP)))
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward_functions(spec),
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        optimizers=(optimizer, schedule),
        callbacks=[budget_callback(stop_at - STEP_MARGIN_SECONDS)],
    )
    train_until_stopped(trainer, stop_at - STEP_MARGIN_SECONDS)
    tokenizer.padding_side = "right"
    save(trainer.model, tokenizer, args.output_dir)
    return trainer.state.global_step
