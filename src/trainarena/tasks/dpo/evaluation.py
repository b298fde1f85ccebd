"""Scoring a DPO artifact: the sigmoid DPO loss of the trained policy against the base model (the
reference) on the hidden split, as TRL's ``DPOTrainer`` computes its evaluation loss. Runs inside the
evaluation child process (``trainarena.tasks.evaluate_worker``).

Per row: ``loss = -logsigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r)))`` where ``pi_c`` is the summed
log-probability of the chosen completion's tokens under the policy (``ref_*`` under the base model).
Score = mean loss (lower is better); ``per_example`` holds each row's share (its loss / rows), whose
sum is the score (``engine.scores``). Details: reward accuracy
(share of rows where the implicit reward of chosen beats rejected), mean margin, mean rewards.

Tokenization follows TRL so that a script using ``DPOTrainer`` trains on exactly what is scored: the
prompt and prompt + completion + eos are tokenized separately with special tokens, and the completion is
whatever follows their common prefix. Safety: as the instruct evaluator (safetensors only, no artifact
code, the base tokenizer).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from trainarena.tasks.dpo.spec import DpoDatasetSpec, render_triple
from trainarena.tasks.result import score_result
from trainarena.tasks.text.rows import read_jsonl
from trainarena.tasks.text.scoring import load_scoring_model, load_tokenizer, pad_id, summed_logps

Pair = tuple[list[int], list[int], list[int]]  # (prompt_ids, chosen_ids, rejected_ids)


def run_evaluation(request: dict[str, Any]) -> dict[str, Any]:
    """Child-process entry: hidden_file, dataset_spec, artifact_dir, base_model, beta, rules."""
    import torch

    rules, beta = request["rules"], float(request["beta"])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    spec = DpoDatasetSpec.from_dict(request["dataset_spec"])
    tokenizer = load_tokenizer(request["base_model"])
    pairs = [encode_pair(tokenizer, *render_triple(spec, row), rules["eval_max_length"]) for row in read_jsonl(Path(request["hidden_file"]))]
    policy = load_scoring_model(Path(request["artifact_dir"]), request["base_model"], device)
    reference = load_scoring_model(Path(request["base_model"]), request["base_model"], device)
    started = time.monotonic()
    batch, pad = rules["eval_batch_size"], pad_id(tokenizer)
    policy_c, policy_r = sequence_logps(policy, pairs, batch, pad, device)
    ref_c, ref_r = sequence_logps(reference, pairs, batch, pad, device)
    result = dpo_losses(policy_c, policy_r, ref_c, ref_r, beta)
    result["details"] |= {"examples": len(pairs), "beta": beta, "seconds": round(time.monotonic() - started, 3), "device": device.type}
    return result


def encode_pair(tokenizer, prompt: str, chosen: str, rejected: str, max_length: int) -> Pair:
    """TRL's tokenization (see the module docstring); sequences longer than ``max_length`` keep their start."""
    eos = tokenizer.eos_token or ""
    prompt_ids = list(tokenizer(prompt)["input_ids"])
    with_chosen = list(tokenizer(prompt + chosen + eos)["input_ids"])
    with_rejected = list(tokenizer(prompt + rejected + eos)["input_ids"])
    cut = min(_common_prefix(prompt_ids, with_chosen), _common_prefix(prompt_ids, with_rejected))
    cut = min(cut, max_length - 1)  # keep at least one completion token
    return prompt_ids[:cut], with_chosen[cut:max_length], with_rejected[cut:max_length]


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def sequence_logps(model, pairs: list[Pair], batch_size: int, pad: int, device) -> tuple[list[float], list[float]]:
    """Summed completion log-probabilities of (chosen, rejected) per pair, in input order."""
    sequences = [(p + c, len(p)) for p, c, _ in pairs] + [(p + r, len(p)) for p, _, r in pairs]
    sums = summed_logps(model, sequences, batch_size, pad, device)
    return sums[: len(pairs)], sums[len(pairs) :]


def dpo_losses(policy_c: list[float], policy_r: list[float], ref_c: list[float], ref_r: list[float], beta: float) -> dict[str, Any]:
    """The score (mean sigmoid DPO loss), per-row losses and reward statistics, from summed log-probs.

    >>> out = dpo_losses([-1.0], [-3.0], [-2.0], [-2.0], beta=0.1)
    >>> round(out["score"], 4), out["details"]["reward_accuracy"]
    (0.5981, 1.0)
    """
    losses, margins, chosen_rewards, rejected_rewards = [], [], [], []
    for pc, pr, rc, rr in zip(policy_c, policy_r, ref_c, ref_r, strict=True):
        chosen, rejected = beta * (pc - rc), beta * (pr - rr)
        margin = chosen - rejected
        losses.append(_softplus(-margin))  # -logsigmoid(x) = softplus(-x)
        margins.append(margin)
        chosen_rewards.append(chosen)
        rejected_rewards.append(rejected)
    n = len(losses)
    details = {
        "reward_accuracy": sum(m > 0 for m in margins) / n,
        "reward_margin": sum(margins) / n,
        "chosen_reward": sum(chosen_rewards) / n,
        "rejected_reward": sum(rejected_rewards) / n,
    }
    return score_result(losses, n, details, "the DPO loss")


def _softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))
