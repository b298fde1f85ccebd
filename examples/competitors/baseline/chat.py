"""House baseline for chat tasks: conversations rendered with the base tokenizer's chat template and
tokenized exactly as the scorer does (labels on assistant turns only), then train.py's SFT recipe."""

from __future__ import annotations

import json
import math
import time

ROLES = ("system", "user", "assistant")


def messages_of(row: dict, spec: dict) -> list[dict[str, str]]:
    role_map = spec.get("role_map") or {}
    out = []
    for message in row[spec["field_messages"]]:
        role = role_map.get(str(message[spec["field_role"]]), str(message[spec["field_role"]]))
        out.append({"role": role, "content": str(message[spec["field_content"]])})
    return out


def encode(tokenizer, messages: list[dict[str, str]], max_length: int) -> dict[str, list[int]]:
    """As the scorer: assistant spans between template(prefix, add_generation_prompt) and template(prefix + turn)."""
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    spans = []
    for k, message in enumerate(messages):
        if message["role"] == "assistant":
            before = tokenizer.apply_chat_template(messages[:k], tokenize=False, add_generation_prompt=True) if k else ""
            spans.append((len(before), len(tokenizer.apply_chat_template(messages[: k + 1], tokenize=False))))
    special = not (tokenizer.bos_token and text.startswith(tokenizer.bos_token))
    encoded = tokenizer(text, add_special_tokens=special, return_offsets_mapping=True)
    ids = encoded["input_ids"][:max_length]
    labels = [
        token if end > start and any(a <= start and end <= b for a, b in spans) else -100
        for token, (start, end) in zip(ids, encoded["offset_mapping"][:max_length], strict=False)
    ]
    return {"input_ids": ids, "labels": labels}


def run(args, stop_at: float) -> int:
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    import train
    from train import budget_callback, load_model, save, time_cosine, train_until_stopped

    spec = json.load(open(args.dataset_spec))
    use_cuda = bool(args.devices) and torch.cuda.is_available()
    model, tokenizer, lora = load_model(args.model, use_cuda)
    with open(args.dataset) as handle:
        examples = [encode(tokenizer, messages_of(json.loads(line), spec), train.MAX_LENGTH) for line in handle if line.strip()]
    examples = [e for e in examples if any(label != -100 for label in e["labels"])]
    config = SFTConfig(
        output_dir="/tmp/trainarena-baseline-chat",
        per_device_train_batch_size=train.BATCH_SIZE,
        num_train_epochs=train.MAX_EPOCHS,
        max_length=train.MAX_LENGTH,
        train_sampling_strategy="group_by_length",
        activation_checkpointing=False,
        bf16=model.dtype == torch.bfloat16,
        max_grad_norm=1.0,
        save_strategy="no",
        report_to="none",
        logging_steps=10,
        disable_tqdm=True,
        dataloader_num_workers=0,
        use_cpu=not use_cuda,
        seed=args.seed,
        data_seed=args.seed,
    )
    rate = train.LEARNING_RATE_LORA if lora else train.LEARNING_RATE_FULL
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=rate)
    steps = math.ceil(len(examples) / train.BATCH_SIZE) * train.MAX_EPOCHS
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, time_cosine(time.time(), stop_at, steps))
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(examples),
        processing_class=tokenizer,
        optimizers=(optimizer, schedule),
        callbacks=[budget_callback(stop_at)],
    )
    train_until_stopped(trainer, stop_at)
    save(trainer.model, tokenizer, args.output_dir)
    return trainer.state.global_step
