"""Scoring a chat artifact: token-weighted mean cross-entropy over the assistant tokens of the hidden
conversations (other tokens masked), exactly as the instruct evaluator computes it (same batching and
safety: safetensors only, no artifact code, the base model's tokenizer and chat template; per-example
values are each conversation's share: its summed cross-entropy over the split's token count)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from trainarena.tasks.chat.render import tokenize_conversation
from trainarena.tasks.chat.spec import ChatDatasetSpec, to_messages
from trainarena.tasks.result import score_result
from trainarena.tasks.text.rows import read_jsonl
from trainarena.tasks.text.scoring import example_losses, load_scoring_model, load_tokenizer, pad_id


def run_evaluation(request: dict[str, Any]) -> dict[str, Any]:
    import torch

    rules = request["rules"]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    spec = ChatDatasetSpec.from_dict(request["dataset_spec"])
    tokenizer = load_tokenizer(request["base_model"])
    rows = read_jsonl(Path(request["hidden_file"]))
    encoded = [tokenize_conversation(tokenizer, to_messages(spec, row, "hidden row"), rules["eval_max_length"]) for row in rows]
    scored = [pair for pair in encoded if any(label != -100 for label in pair[1])]  # cut off before any answer
    model = load_scoring_model(Path(request["artifact_dir"]), request["base_model"], device)
    started = time.monotonic()
    sums, counts = example_losses(model, scored, rules["eval_batch_size"], pad_id(tokenizer), device)
    details = {"tokens": sum(counts), "examples": len(scored), "skipped": len(encoded) - len(scored),
               "seconds": round(time.monotonic() - started, 3), "device": device.type}
    return score_result(sums, details["tokens"], details, "the loss")
