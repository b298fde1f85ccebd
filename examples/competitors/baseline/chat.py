"""House baseline for chat tasks: conversations rendered with the base tokenizer's chat template and
tokenized exactly as the scorer does (labels on assistant turns only), then train.py's SFT recipe
(train_examples: the packed loop of fastloop.py)."""

from __future__ import annotations

import json

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
    import train
    from train import load_model, save, train_examples

    spec = json.load(open(args.dataset_spec))
    use_cuda = bool(args.devices) and torch.cuda.is_available()
    model, tokenizer, lora = load_model(args.model, use_cuda)
    with open(args.dataset) as handle:
        examples = [encode(tokenizer, messages_of(json.loads(line), spec), train.MAX_LENGTH) for line in handle if line.strip()]
    examples = [e for e in examples if any(label != -100 for label in e["labels"])]
    rate = train.LEARNING_RATE_LORA if lora else train.LEARNING_RATE_FULL
    steps = train_examples(model, tokenizer, examples, rate, stop_at, args.seed, use_cuda)
    save(model, tokenizer, args.output_dir)
    return steps
