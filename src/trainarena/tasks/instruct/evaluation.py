"""Scoring an instruct artifact: token-weighted mean cross-entropy over the completion tokens of the
hidden split. Runs inside the evaluation child process (``trainarena.tasks.evaluate_worker``).

Score = (sum of the cross-entropy of every completion token, eos included) / (number of completion
tokens), i.e. the loss ``transformers`` reports for one batch holding every example. Prompt tokens are
masked. ``per_example`` holds each example's own mean, in hidden-file order, for the bootstrap gate.

Safety: weights load with ``use_safetensors=True`` and ``trust_remote_code=False``; no file of the artifact
is executed or unpickled. The tokenizer is always the base model's, so an artifact cannot change how
the hidden text is cut into tokens (and so the number of tokens the loss is averaged over).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from trainarena.tasks.instruct.data import read_jsonl
from trainarena.tasks.instruct.render import render_example, tokenize_example
from trainarena.tasks.instruct.spec import InstructDatasetSpec

Encoded = tuple[list[int], list[int]]  # (input_ids, labels)


class ArtifactError(Exception):
    """The artifact cannot be scored; the message is the reason stored with the failed evaluation."""


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
    tokens = sum(counts)
    score = sum(sums) / tokens
    per_example = [s / c for s, c in zip(sums, counts, strict=True)]
    details = {"tokens": tokens, "examples": len(rows), "seconds": round(seconds, 3), "device": device.type}
    if not math.isfinite(score) or not all(math.isfinite(x) for x in per_example):
        return {"score": None, "failure": "the loss is not finite (NaN or inf)", "details": details}
    return {"score": score, "per_example": per_example, "details": details}


def load_tokenizer(base_model: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base_model, trust_remote_code=False)


def pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)


def encode_rows(spec: InstructDatasetSpec, rows: list[dict], tokenizer, max_length: int) -> list[Encoded]:
    return [tokenize_example(tokenizer, *render_example(spec, row), max_length) for row in rows]


def load_scoring_model(artifact_dir: Path, base_model: str, device):
    """A full ``save_pretrained`` model directory, or a PEFT adapter directory on the base model."""
    import torch

    if not artifact_dir.is_dir():
        raise ArtifactError(f"artifact directory {artifact_dir} does not exist")
    if (artifact_dir / "adapter_config.json").is_file():
        model = _load_adapter(artifact_dir, base_model)
    elif (artifact_dir / "config.json").is_file():
        model = _load_checked(artifact_dir)
    else:
        raise ArtifactError("artifact has neither config.json (a model) nor adapter_config.json (a PEFT adapter)")
    return model.to(device=device, dtype=torch.float32).eval()


def _load_checked(directory: Path):
    from transformers import AutoModelForCausalLM

    if not any(directory.glob("*.safetensors")):
        raise ArtifactError(f"no .safetensors weights in {directory.name or directory}")
    model, info = AutoModelForCausalLM.from_pretrained(
        directory, use_safetensors=True, trust_remote_code=False, output_loading_info=True
    )
    problems = {key: info.get(key) for key in ("missing_keys", "mismatched_keys") if info.get(key)}
    if problems:
        raise ArtifactError(f"weights do not match the architecture: {_short(problems)}")
    return model


def _load_adapter(directory: Path, base_model: str):
    from peft import PeftModel
    from safetensors import safe_open

    weights = directory / "adapter_model.safetensors"
    if not weights.is_file():
        raise ArtifactError("PEFT adapter without adapter_model.safetensors (pickled weights are not loaded)")
    with safe_open(weights, framework="pt") as adapter:  # raises on a corrupt file before PEFT sees it
        if not list(adapter.keys()):
            raise ArtifactError("adapter_model.safetensors holds no tensors")
    base = _load_checked(Path(base_model))
    return PeftModel.from_pretrained(base, directory, is_trainable=False)


def example_losses(model, encoded: list[Encoded], batch_size: int, pad: int, device) -> tuple[list[float], list[int]]:
    """Per example: (sum of completion-token cross-entropies, completion token count), in input order.
    Examples are batched longest first (less padding); logits are computed only from the first position
    that predicts a completion token, which saves most of the vocabulary projection on long prompts."""
    import torch

    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i][0]))
    sums, counts = [0.0] * len(encoded), [0] * len(encoded)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            batch_sums, batch_counts = _batch_losses(model, [encoded[i] for i in batch], pad, device)
            for i, s, c in zip(batch, batch_sums, batch_counts, strict=True):
                sums[i], counts[i] = s, c
    return sums, counts


def _batch_losses(model, examples: list[Encoded], pad: int, device) -> tuple[list[float], list[int]]:
    import torch
    import torch.nn.functional as F

    width = max(len(ids) for ids, _ in examples)
    input_ids = torch.full((len(examples), width), pad, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    for row, (ids, labs) in enumerate(examples):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(labs)] = torch.tensor(labs)
        attention[row, : len(ids)] = 1
    first_label = min(next(i for i, label in enumerate(labs) if label != -100) for _, labs in examples)
    keep = width - (first_label - 1) if first_label > 0 else width
    logits = model(
        input_ids=input_ids.to(device), attention_mask=attention.to(device), logits_to_keep=keep
    ).logits.float()
    targets = labels[:, width - keep + 1 :].to(device)
    losses = F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100, reduction="none"
    ).view(targets.shape)
    mask = targets != -100
    return losses.sum(dim=1).tolist(), mask.sum(dim=1).tolist()


def _short(value: object, limit: int = 300) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."
