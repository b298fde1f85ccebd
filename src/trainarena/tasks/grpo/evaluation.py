"""Scoring a GRPO artifact, inside the evaluation child process: sample ``sampling["samples"]``
completions per hidden prompt from the trained model (fixed settings and seed, the same for every
artifact), reward the completions with the task's weighted reward functions (run in the reward sandbox,
never here), and subtract a KL penalty to the base model. Higher is better.

Per completion: ``sum_i w_i * reward_i - kl_coef * (logp_trained(c) - logp_base(c))`` with weights
normalised to sum to 1 and ``c`` the sampled completion's tokens (eos included when generated); a
prompt's value is the mean over its samples (one completion's value varies by more than a short run's
gain: docs/benchmarks.md, "GRPO: the scorer's noise"). Both log-probs are
taken at the sampling temperature, so the KL term estimates KL(trained || base) of the distributions
the completions are drawn from (never negative in expectation); at temperature 1 a model flatter than
the base, sampled at 0.7, scored a negative "KL", a bonus for learning nothing. The score is the
mean; ``per_example`` holds each prompt's share (its value / prompts), whose sum is the score
(``engine.scores``); details hold each reward's mean and the mean KL. Where the rewards declare their
ranges, the weighted reward span is returned as the task's lead unit.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from trainarena.tasks.grpo.rewards import RewardSandbox, score_rewards
from trainarena.tasks.grpo.spec import GrpoDatasetSpec, render_prompt
from trainarena.tasks.result import score_result
from trainarena.tasks.text.rows import read_jsonl
from trainarena.tasks.text.scoring import load_scoring_model, load_tokenizer, pad_id, summed_logps


def run_evaluation(request: dict[str, Any]) -> dict[str, Any]:
    import torch

    rules, sampling = request["rules"], request["sampling"]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    spec = GrpoDatasetSpec.from_dict(request["dataset_spec"])
    tokenizer = load_tokenizer(request["base_model"])
    rows = read_jsonl(Path(request["hidden_file"]))[: sampling["prompts"]]
    prompts = [render_prompt(spec, row) for row in rows]
    policy = load_scoring_model(Path(request["artifact_dir"]), request["base_model"], device)
    started = time.monotonic()
    samples = int(sampling.get("samples", 1))

    def each_sample(items: list[Any]) -> list[Any]:  # one entry per completion: a prompt's `samples` in a row
        return [item for item in items for _ in range(samples)]

    prompt_ids = each_sample([list(tokenizer(p)["input_ids"])[-(rules["eval_max_length"] // 2) :] for p in prompts])
    completion_ids = generate(policy, tokenizer, prompt_ids, sampling, rules["eval_batch_size"], device)
    sequences = [(p + c, len(p)) for p, c in zip(prompt_ids, completion_ids, strict=True)]
    temperature = float(sampling["temperature"])
    policy_logps = summed_logps(policy, sequences, rules["eval_batch_size"], pad_id(tokenizer), device, temperature)
    del policy
    reference = load_scoring_model(Path(request["base_model"]), request["base_model"], device)
    reference_logps = summed_logps(reference, sequences, rules["eval_batch_size"], pad_id(tokenizer), device, temperature)
    texts = tokenizer.batch_decode(completion_ids, skip_special_tokens=True)
    columns = {spec.field_extra: each_sample([row.get(spec.field_extra, "") for row in rows])} if spec.field_extra else {}
    rewards = score_rewards(spec.reward_functions, each_sample(prompts), texts, columns,
                            RewardSandbox.from_dict(request["reward_sandbox"]))
    kls = [p - r for p, r in zip(policy_logps, reference_logps, strict=True)]
    result = combine(rewards, spec.weights(), kls, float(request["kl_coef"]), [f.name for f in spec.reward_functions], samples)
    result["lead_unit"] = spec.reward_span()
    result["details"] |= {
        "examples": len(rows),
        "samples_per_example": samples,
        "seconds": round(time.monotonic() - started, 3),
        "device": device.type,
        "sample_completions": texts[::samples][:3],
    }
    return result


def generate(model, tokenizer, prompt_ids: list[list[int]], sampling: dict[str, Any], batch_size: int, device) -> list[list[int]]:
    """One sampled completion per entry of ``prompt_ids`` (a prompt repeated for several samples; left-padded
    batches, one seeded generator for the whole run); each ends at its first eos (kept) or at ``max_new_tokens``."""
    import torch
    from transformers import GenerationConfig

    torch.manual_seed(int(sampling["seed"]))
    pad, eos = pad_id(tokenizer), tokenizer.eos_token_id
    # Only the platform's sampling settings: an artifact's generation_config.json (suppressed tokens,
    # biases, penalties) would steer the completions while the KL penalty, taken from the raw logits,
    # never saw it. It replaces the model's own: generate fills what a passed config leaves unset from it.
    model.generation_config = GenerationConfig(
        do_sample=True, temperature=float(sampling["temperature"]), top_p=float(sampling["top_p"]), top_k=0,
        max_new_tokens=int(sampling["max_new_tokens"]), pad_token_id=pad, eos_token_id=eos,
    )
    completions: list[list[int]] = []
    with torch.inference_mode():
        for start in range(0, len(prompt_ids), batch_size):
            batch = prompt_ids[start : start + batch_size]
            width = max(len(ids) for ids in batch)
            input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in batch], device=device)
            attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch], device=device)
            output = model.generate(input_ids=input_ids, attention_mask=attention)
            for row in output[:, width:].tolist():
                completions.append(row[: row.index(eos) + 1] if eos in row else row)
    return completions


def combine(rewards: list[list[float]], weights: list[float], kls: list[float], kl_coef: float, names: list[str],
            samples: int = 1) -> dict[str, Any]:
    """Score, per-example values and details from rewards ``[function][completion]`` and per-completion KL,
    the completions ``samples`` consecutive ones per prompt: a prompt's value is the mean of its samples'.

    >>> out = combine([[1.0, 0.0], [1.0, 1.0]], [2 / 3, 1 / 3], [0.5, 1.5], 0.1, ["a", "b"])
    >>> [round(x, 4) for x in out["per_example"]], round(out["score"], 4)
    ([0.475, 0.0917], 0.5667)
    >>> combine([[1.0, 0.0]], [1.0], [0.0, 0.0], 0.1, ["a"], samples=2)["per_example"]
    [0.5]
    """
    values = [
        sum(w * values[i] for w, values in zip(weights, rewards, strict=True)) - kl_coef * kls[i] for i in range(len(kls))
    ]
    per_prompt = [sum(values[i : i + samples]) / samples for i in range(0, len(values), samples)]
    n = len(values)
    details = {
        "rewards": {name: sum(values) / n for name, values in zip(names, rewards, strict=True)},
        "kl": sum(kls) / n,
        "kl_coef": kl_coef,
    }
    return score_result(per_prompt, len(per_prompt), details, "the GRPO score")
