"""House baseline for GRPO tasks: a hand-written GRPO loop that optimises exactly what is scored, on
the clock like train.py. No TRL (policyloop.py says why).

The score of a completion c of a prompt is R(c) - kl_coef * (log p_trained(c) - log p_base(c)), with R
the task's weighted reward functions and c sampled with the platform's settings (the dataset spec's
"scoring" entry). Each step samples GENERATIONS completions for each of PROMPTS_PER_STEP prompts with
those settings, scores every completion so (KL included, against the base model), and takes one
policy-gradient step on the advantages within each prompt's group (score minus the group's mean,
over its spread). On-policy, one update per sample: no importance ratio, no clipping.

The reward functions arrive as Python source in the dataset spec; they are exec'd here, inside this
run's sandbox (the platform itself never runs them outside one). A reward function that fails on a
step's completions gives that step no signal (it is not taken) rather than ending the run.

On a GPU: fused AdamW and Liger's kernels when installed (policyloop.py). Not varlen attention: the
model also generates, through the key-value cache and padded batches, which varlen does not serve.
"""

from __future__ import annotations

import json
import math
import time

# Measured on the tiny model (docs/benchmarks.md, "DPO and GRPO: what was tried"): 1e-4 barely moved
# the reward in 60 steps, 3e-3 collapsed to empty completions, 1e-3 learnt the format within 20 steps.
LEARNING_RATE = 1e-3
LEARNING_RATE_LORA = 1e-4  # not measured here (no large model offline): a common LoRA rate for RL
PROMPTS_PER_STEP = 8
# Completions per prompt, the group whose mean is each one's baseline: with 4, most groups of a weak
# model's samples scored all alike (no signal); 8 found the rewarded ones.
GENERATIONS = 8
MAX_EPOCHS = 20  # the clock ends a run long before this
MAX_PROMPT_TOKENS = 256  # the scorer keeps a prompt's last eval_max_length // 2 tokens (512 // 2)
STD_EPSILON = 1e-4  # an all-equal group has advantage 0, not 0 / 0


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


def weighted_rewards(functions: list, weights: list[float], prompts: list[str], completions: list[str],
                     columns: dict[str, list]) -> list[float] | None:
    """sum_i w_i * reward_i per completion (weights normalised as the scorer does); None when a
    function raises or returns something else than one number per completion."""
    total = [0.0] * len(completions)
    for function, weight in zip(functions, weights, strict=True):
        try:
            values = [float(v) for v in function(prompts=list(prompts), completions=list(completions), **columns)]
        except Exception as error:  # noqa: BLE001 - the task author's code, run on this model's samples
            print(f"reward {getattr(function, '__name__', '?')} failed ({type(error).__name__}: {error}); step skipped", flush=True)
            return None
        if len(values) != len(completions) or not all(math.isfinite(v) for v in values):
            return None
        total = [t + weight * v for t, v in zip(total, values, strict=True)]
    return total


def sample(model, prompts: list[list[int]], sampling: dict, pad_id: int, eos_id: int) -> list[list[int]]:
    """One completion per prompt with the scorer's settings (left-padded batch, no top-k), each cut
    after its first eos (kept), as the scorer cuts them."""
    import torch

    device = next(model.parameters()).device
    width = max(len(ids) for ids in prompts)
    input_ids = torch.tensor([[pad_id] * (width - len(ids)) + ids for ids in prompts], device=device)
    attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in prompts], device=device)
    with torch.no_grad():
        output = model.generate(input_ids=input_ids, attention_mask=attention, do_sample=True,
                                temperature=float(sampling["temperature"]), top_p=float(sampling["top_p"]), top_k=0,
                                max_new_tokens=int(sampling["max_new_tokens"]), pad_token_id=pad_id, eos_token_id=eos_id)
    return [row[: row.index(eos_id) + 1] if eos_id in row else row for row in output[:, width:].tolist()]


def run(args, stop_at: float) -> int:
    """Train and save; returns the optimizer steps taken."""
    import fastloop
    import policyloop
    import torch
    from train import load_model, save, time_cosine

    with open(args.dataset_spec) as handle:
        spec = json.load(handle)
    sampling, kl_coef = spec["scoring"]["sampling"], float(spec["scoring"]["kl_coef"])
    weights = [float(f["weight"]) for f in spec["reward_functions"]]
    weights = [w / sum(weights) for w in weights]
    functions, extra = reward_functions(spec), spec.get("field_extra")
    with open(args.dataset) as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    use_cuda = bool(args.devices) and torch.cuda.is_available()
    model, tokenizer, lora = load_model(args.model, use_cuda)
    texts = [render_prompt(row, spec) for row in rows]
    prompts = [tokenizer(text)["input_ids"][-MAX_PROMPT_TOKENS:] for text in texts]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if use_cuda:
        policyloop.accelerate(model, varlen=False)
    logps = policyloop.packed_logps(model, pad_id, varlen=False)
    base, base_context = policyloop.frozen_base(model, lora) if kl_coef else (None, None)
    base_logps = policyloop.packed_logps(base, pad_id, varlen=False) if kl_coef else None
    optimizer = fastloop.optimizer_for(model, LEARNING_RATE_LORA if lora else LEARNING_RATE, use_cuda)
    max_steps = math.ceil(len(prompts) / PROMPTS_PER_STEP) * MAX_EPOCHS
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, time_cosine(time.time(), stop_at, max_steps))
    temperature = float(sampling["temperature"])

    def step(indices: list[int]) -> float:
        chosen = [i for i in indices for _ in range(GENERATIONS)]
        model.eval()
        completions = sample(model, [prompts[i] for i in chosen], sampling, pad_id, tokenizer.eos_token_id)
        columns = {extra: [rows[i].get(extra, "") for i in chosen]} if extra else {}
        rewards = weighted_rewards(functions, weights, [texts[i] for i in chosen],
                                   tokenizer.batch_decode(completions, skip_special_tokens=True), columns)
        if rewards is None:
            return math.nan
        model.train()
        sequences = [(prompts[i] + c, len(prompts[i])) for i, c in zip(chosen, completions, strict=True)]
        sampled, plain = logps(sequences, (temperature, 1.0))[0]
        kl = torch.zeros_like(plain)
        if base_logps is not None:
            with torch.no_grad(), base_context():
                kl = plain.detach() - base_logps(sequences)[0][0]
        scores = (torch.tensor(rewards, device=kl.device) - kl_coef * kl).view(-1, GENERATIONS)
        advantages = (scores - scores.mean(1, keepdim=True)) / (scores.std(1, keepdim=True) + STD_EPSILON)
        loss = -(advantages.flatten() * sampled).mean()
        policyloop.optimizer_step(model, optimizer, schedule, loss)
        return scores.mean().item()

    steps = policyloop.train_on_clock(step, fastloop.step_batches(len(prompts), PROMPTS_PER_STEP, args.seed, MAX_EPOCHS), stop_at)
    save(model, tokenizer, args.output_dir)
    return steps
