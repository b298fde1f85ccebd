"""Scoring an instruct artifact: token-weighted mean cross-entropy over the completion tokens of the
hidden split. Runs inside the evaluation child process (``trainarena.tasks.evaluate_worker``).

Score = (sum of the cross-entropy of every completion token, eos included) / (number of completion
tokens of the whole hidden split), i.e. the loss ``transformers`` reports for one batch holding every
example. Prompt tokens are masked. ``per_example`` holds, in hidden-file order, each example's share:
its summed cross-entropy over the split's token count; the score is their sum (``engine.scores``).

Safety: weights load with ``use_safetensors=True`` and ``trust_remote_code=False``; no file of the artifact
is executed or unpickled. The tokenizer is always the base model's, so an artifact cannot change how
the hidden text is cut into tokens (and so the number of tokens the loss is averaged over).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from trainarena.tasks.instruct.render import render_example, tokenize_example
from trainarena.tasks.instruct.spec import InstructDatasetSpec
from trainarena.tasks.result import score_result
from trainarena.tasks.text.rows import read_jsonl
from trainarena.tasks.text.scoring import Encoded, example_losses, load_scoring_model, load_tokenizer, pad_id


def run_evaluation(request: dict[str, Any]) -> dict[str, Any]:
    """Child-process entry: ``request`` holds hidden_file, dataset_spec, artifact_dir, base_model and the
    DataRules dict under ``rules``. Returns score / failure / per_example / details."""
    import torch

    rules = request["rules"]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    spec = InstructDatasetSpec.from_dict(request["dataset_spec"])
    tokenizer = load_tokenizer(request["base_model"])
    rows = read_jsonl(Path(request["hidden_file"]))
    encoded = encode_rows(spec, rows, tokenizer, rules["eval_max_length"])
    model = load_scoring_model(Path(request["artifact_dir"]), request["base_model"], device)
    started = time.monotonic()
    sums, counts = example_losses(model, encoded, rules["eval_batch_size"], pad_id(tokenizer), device)
    seconds = time.monotonic() - started
    details = {"tokens": sum(counts), "examples": len(rows), "seconds": round(seconds, 3), "device": device.type}
    return score_result(sums, details["tokens"], details, "the loss")


def encode_rows(spec: InstructDatasetSpec, rows: list[dict], tokenizer, max_length: int) -> list[Encoded]:
    return [tokenize_example(tokenizer, *render_example(spec, row), max_length) for row in rows]


