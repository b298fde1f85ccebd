"""Scoring helpers of the text task types, run inside the evaluation child process: the base model's
tokenizer, the artifact loaded as a model (safetensors only, no remote code), per-example losses and
summed completion log-probabilities, batched longest first."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from trainarena.execution.artifacts import ADAPTER_CONFIG, check_weight_indexes
from trainarena.wording import counted

Encoded = tuple[list[int], list[int]]  # (input_ids, labels)

ADAPTER_WEIGHTS = "adapter_model.safetensors"
# What transformers' from_pretrained reads from a local folder with use_safetensors=True, in its order.
FULL_WEIGHTS, FULL_INDEX = "model.safetensors", "model.safetensors.index.json"


class ArtifactError(Exception):
    """The artifact cannot be scored; the message is the reason stored with the failed evaluation."""


def load_tokenizer(base_model: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base_model, trust_remote_code=False)


def pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)


def scored_files(artifact_dir: Path) -> list[str]:
    """The artifact's files :func:`load_scoring_model` reads, in its order: a PEFT adapter's config and
    weights, or a full model's weights (``model.safetensors``, else the index and the shards it names).
    Nothing else of the artifact (its config.json, tokenizer, generation config, code) is ever read."""
    if (artifact_dir / ADAPTER_CONFIG).is_file():
        return [ADAPTER_CONFIG, ADAPTER_WEIGHTS]
    if (artifact_dir / FULL_WEIGHTS).is_file():
        return [FULL_WEIGHTS]
    if (artifact_dir / FULL_INDEX).is_file():
        try:
            shards = json.loads((artifact_dir / FULL_INDEX).read_text(encoding="utf-8"))["weight_map"].values()
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise ArtifactError(f"{FULL_INDEX} is not a readable weight index ({type(error).__name__})") from None
        return [FULL_INDEX, *sorted({str(shard) for shard in shards})]
    raise ArtifactError(f"artifact has neither {ADAPTER_CONFIG} nor {FULL_WEIGHTS} / {FULL_INDEX}")


def load_scoring_model(artifact_dir: Path, base_model: str, device):
    """A full ``save_pretrained`` model directory, or a PEFT adapter directory on the base model."""
    import torch

    if not artifact_dir.is_dir():
        raise ArtifactError("the artifact folder to score does not exist (anymore)")
    if (artifact_dir / ADAPTER_CONFIG).is_file():
        model = _load_adapter(artifact_dir, base_model)
    elif (artifact_dir / "config.json").is_file():
        model = _load_checked(artifact_dir, base_model)
    else:
        raise ArtifactError("artifact has neither config.json (a model) nor adapter_config.json (a PEFT adapter)")
    return model.to(device=device, dtype=torch.float32).eval()


def _load_checked(directory: Path, base_model: str):
    """The weights of ``directory`` in the architecture of ``base_model``'s config: a fine-tune changes
    weights, not what the model is. The artifact's own config.json is not used: its architecture fields
    (another model_type, bidirectional attention that lets a position see the token it predicts) would
    change what the score measures."""
    from transformers import AutoConfig, AutoModelForCausalLM

    if not any(directory.glob("*.safetensors")):
        raise ArtifactError(f"no .safetensors weights in {directory.name or directory}")
    names = {path.relative_to(directory).as_posix() for path in directory.rglob("*") if path.is_file()}
    try:
        check_weight_indexes(directory, names)
    except ValueError as error:
        raise ArtifactError(str(error)) from None
    config = AutoConfig.from_pretrained(base_model, trust_remote_code=False)
    # ignore_mismatched_sizes: otherwise transformers raises "for details look at the above report", a
    # report it logs to a stream no run keeps. Loaded with those tensors left out, the loading info
    # names them with both shapes, and the artifact is refused here with them.
    model, info = AutoModelForCausalLM.from_pretrained(
        directory, config=config, use_safetensors=True, trust_remote_code=False, output_loading_info=True,
        ignore_mismatched_sizes=True,
    )  # fmt: skip
    problems = misfit_tensors(info.get("mismatched_keys") or (), info.get("missing_keys") or ())
    if problems:
        raise ArtifactError(f"weights do not match the base model's architecture: {problems}")
    return model


# Tensors named in an artifact's refusal, of each kind; the rest are counted.
NAMED_TENSORS = 3


def misfit_tensors(mismatched: Iterable[tuple[str, Sequence[int], Sequence[int]]], missing: Iterable[str]) -> str:
    """The tensors of an artifact that do not fit the model, in a few words: those of another shape, with
    the artifact's and the expected shape, then those missing; the first :data:`NAMED_TENSORS` of each
    by name (empty when all fit)."""
    shapes = sorted((str(key), list(found), list(expected)) for key, found, expected in mismatched)
    absent = sorted(map(str, missing))
    parts = []
    if shapes:
        named = "; ".join(f"{key}: artifact {found}, expected {expected}" for key, found, expected in shapes[:NAMED_TENSORS])
        parts.append(f"{counted(len(shapes), 'tensor')} of another shape ({named}{_more(len(shapes))})")
    if absent:
        parts.append(f"{counted(len(absent), 'tensor')} missing ({', '.join(absent[:NAMED_TENSORS])}{_more(len(absent))})")
    return "; ".join(parts)


def _more(count: int) -> str:
    return f"; and {count - NAMED_TENSORS} more" if count > NAMED_TENSORS else ""


def _load_adapter(directory: Path, base_model: str):
    from peft import PeftModel
    from safetensors import safe_open

    weights = directory / ADAPTER_WEIGHTS
    if not weights.is_file():
        raise ArtifactError("PEFT adapter without adapter_model.safetensors (pickled weights are not loaded)")
    with safe_open(weights, framework="pt") as adapter:  # raises on a corrupt file before PEFT sees it
        if not list(adapter.keys()):
            raise ArtifactError("adapter_model.safetensors holds no tensors")
    base = _load_checked(Path(base_model), base_model)
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


def summed_logps(model, sequences: list[tuple[list[int], int]], batch_size: int, pad: int, device,
                 temperature: float = 1.0) -> list[float]:
    """For each ``(ids, prompt_len)``: the summed log-probability of ``ids[prompt_len:]`` given what precedes,
    under the model's distribution at ``temperature`` (its logits divided by it)."""
    import torch

    order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i][0]))
    sums = [0.0] * len(sequences)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = [sequences[i] for i in chunk]
            for i, value in zip(chunk, _batch_logps(model, batch, pad, device, temperature), strict=True):
                sums[i] = value
    return sums


def _batch_logps(model, sequences: list[tuple[list[int], int]], pad: int, device, temperature: float) -> list[float]:
    import torch

    width = max(len(ids) for ids, _ in sequences)
    input_ids = torch.full((len(sequences), width), pad, dtype=torch.long)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)
    completion = torch.zeros((len(sequences), width), dtype=torch.bool)
    for row, (ids, prompt_len) in enumerate(sequences):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, : len(ids)] = 1
        completion[row, prompt_len : len(ids)] = True
    logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits.float()
    logps = torch.log_softmax(logits[:, :-1] / temperature, dim=-1)
    targets = input_ids[:, 1:].to(device)
    token_logps = logps.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return (token_logps * completion[:, 1:].to(device)).sum(dim=1).tolist()
