"""House baseline for GRPO tasks: a hand-written policy-optimisation loop that optimises exactly what
is scored, on the clock like train.py. No TRL (policyloop.py says why).

The score of a completion c of a prompt is R(c) - kl_coef * (log p_trained(c) - log p_base(c)), with R
the task's weighted reward functions, c sampled with the platform's settings (the dataset spec's
"scoring" entry) and both log-probs at the sampling temperature. Each step samples GENERATIONS completions for each of PROMPTS_PER_STEP prompts with
those settings and scores every completion so (KL included, against the base model).

- The update: the policy that maximises E[R] - kl_coef * KL(policy || base) is base * exp(R / kl_coef)
  (normalised per prompt). On completions sampled from the current policy, that target over the
  policy is proportional to exp(score / kl_coef), the scored quantity itself; so each step is a
  weighted maximum-likelihood step toward it: within each prompt's group a completion's advantage is
  GENERATIONS * softmax(score / kl_coef) - 1 (self-normalised weights, mean zero). Its fixed point is
  the score's optimum, so training does not drift into KL the score charges back, as GRPO's linear
  advantages over the group's spread did (docs/benchmarks.md, "DPO and GRPO: what was tried").
  With kl_coef 0 there is no such target: advantages are then GRPO's (score minus the group's mean,
  over its spread). On-policy, one update per sample: no importance ratio, no clipping.
- A held-out guard: HELD_OUT_PROMPTS of the prompts are kept out of training and, after it, each
  fraction of the way from the base (SCALES; 0 is the base itself) is scored on them (the same reward
  minus KL, HELD_OUT_SAMPLES completions per prompt, one seeded draw for every fraction). The weights
  stay the base's unless a fraction beats it by more than the standard error of its per-prompt
  differences to the base; then they move the smallest fraction within one such standard error of
  the best (less KL for a gain the held-out set cannot tell apart). A run whose training did not
  clearly help thus saves the base, scores exactly as the base model, and says so on its last stdout
  line and on stderr (KEPT_BASE_NOTE), so that the equal score does not read as a failed run.

The reward functions arrive as Python source in the dataset spec; they are exec'd here, inside this
run's sandbox (the platform itself never runs them outside one). A reward function that fails on a
step's completions gives that step no signal (it is not taken) rather than ending the run.

Full fine-tune for small models, LoRA for large ones (train.load_model). On a GPU: fused AdamW and
Liger's kernels when installed (policyloop.py). Not varlen attention: the model also generates,
through the key-value cache and padded batches, which varlen does not serve.
"""

from __future__ import annotations

import json
import math
import time

# Measured on the tiny model, CPU clock (docs/benchmarks.md, "DPO and GRPO: what was tried"), gain
# over the base with the softmax advantages: 5e-4 +0.027 (5 seeds, all above the base), 1e-3 +0.018 (3
# seeds, one below), 2e-3 drifted to 4.9 nats of KL and below the base. (GRPO's advantages wanted 1e-3.)
LEARNING_RATE = 5e-4
LEARNING_RATE_LORA = 1e-4  # not measured here (no large model offline): a common LoRA rate for RL
PROMPTS_PER_STEP = 8
# Completions per prompt, the group the weights are normalised over: with 4, most groups of a weak
# model's samples scored all alike (no signal); 8 found the rewarded ones.
GENERATIONS = 8
MAX_EPOCHS = 20  # the clock ends a run long before this
MAX_PROMPT_TOKENS = 256  # the scorer keeps a prompt's last eval_max_length // 2 tokens (512 // 2)
STD_EPSILON = 1e-4  # an all-equal group has advantage 0, not 0 / 0 (kl_coef 0 only)
# The held-out guard: 32 prompts x 4 completions (128, two steps' samples) per fraction. The pass of
# 5 fractions took 2.4-4.5 s, 4-6 training steps' time, on the tiny model: that many are kept free at
# the end of training (10 left a loaded run 9 steps), and the pass stops between fractions at the stop time.
HELD_OUT_PROMPTS = 32
HELD_OUT_FRACTION = 0.1  # at most this share of a small prompt set
HELD_OUT_SAMPLES = 4  # a prompt's held-out value is the mean of its samples, as the scorer's (8 per prompt since 0.3.0)
SCALES = (1.0, 0.0, 0.5, 0.75, 0.25)  # scored in this order: when time runs out, the trained model and the base come first
HELD_OUT_STEPS = 6
# The held-out 128 samples' score has a standard error (0.005-0.007 on the tiny model's differences to
# the base) as large as a 30 s run's gain; a fraction must beat the base by this many standard errors to
# be saved. Under the one-completion scorer (trainarena 0.2.0), whose own noise was larger still, 1 lost
# to the base on 2 of 5 seeds and 2 was kept; scored with 8 completions per prompt (0.3.0), 1 gained on
# 5 of 5 seeds, +0.0139 in the mean against +0.0084 at 2 (which saved the base on one seed) and +0.0067
# with no guard at all (always the trained weights): docs/benchmarks.md, "GRPO: the scorer's noise".
STANDARD_ERRORS = 1.0
# Said when the guard saves the base (train.SAVED_NOTES): expected, not a failure, on a seed whose
# training gained less than the held-out draw's noise (docs/benchmarks.md, "GRPO: the scorer's noise").
KEPT_BASE_NOTE = "kept the base model: no held-out gain above noise (the house GRPO guard; see its held-out line above)"


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


def group_advantages(scores, kl_coef: float):
    """Advantages of completions ``scores[prompt, completion]``: group size * softmax(score / kl_coef) - 1
    within each prompt's group (the weights toward base * exp(R / kl_coef), centred), or with kl_coef
    0 the score minus the group's mean over its spread.

    >>> import torch
    >>> [[round(a, 4) for a in row] for row in group_advantages(torch.tensor([[0.1, 0.1], [0.0, 0.05 * math.log(3)]]), 0.05).tolist()]
    [[0.0, 0.0], [-0.5, 0.5]]
    """
    import torch

    if kl_coef > 0:
        return scores.shape[1] * torch.softmax(scores / kl_coef, dim=1) - 1.0
    return (scores - scores.mean(1, keepdim=True)) / (scores.std(1, keepdim=True) + STD_EPSILON)


def run(args, stop_at: float) -> int:
    """Train and save; returns the optimizer steps taken."""
    import random

    import fastloop
    import policyloop
    import torch
    from train import STOP_REQUESTED, load_model, save, time_cosine

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
    base, base_context = policyloop.frozen_base(model, lora)  # the KL's reference and the guard's fraction 0
    base_logps = policyloop.packed_logps(base, pad_id, varlen=False)
    order = list(range(len(prompts)))
    random.Random(args.seed).shuffle(order)
    held = min(HELD_OUT_PROMPTS, int(len(prompts) * HELD_OUT_FRACTION))
    held_out, trained = order[:held], order[held:]
    optimizer = fastloop.optimizer_for(model, LEARNING_RATE_LORA if lora else LEARNING_RATE, use_cuda)
    max_steps = math.ceil(len(trained) / PROMPTS_PER_STEP) * MAX_EPOCHS
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, time_cosine(time.time(), stop_at, max_steps))
    temperature = float(sampling["temperature"])

    def rollout(indices: list[int], repeats: int):
        """(sequences, weighted rewards) of ``repeats`` completions per prompt, sampled as the scorer
        samples; None when a reward function failed on them."""
        chosen = [i for i in indices for _ in range(repeats)]
        model.eval()
        completions = sample(model, [prompts[i] for i in chosen], sampling, pad_id, tokenizer.eos_token_id)
        columns = {extra: [rows[i].get(extra, "") for i in chosen]} if extra else {}
        rewards = weighted_rewards(functions, weights, [texts[i] for i in chosen],
                                   tokenizer.batch_decode(completions, skip_special_tokens=True), columns)
        sequences = [(prompts[i] + c, len(prompts[i])) for i, c in zip(chosen, completions, strict=True)]
        return None if rewards is None else (sequences, rewards)

    def scores(sequences, rewards: list[float], tempered):
        """The scored quantity per completion: reward minus kl_coef times its log-ratio to the base, both
        at the sampling temperature."""
        with torch.no_grad(), base_context():
            kl = tempered.detach() - base_logps(sequences, temperature)[0] if kl_coef else torch.zeros_like(tempered)
        return torch.tensor(rewards, device=kl.device) - kl_coef * kl

    def step(indices: list[int]) -> float:
        sampled = rollout(indices, GENERATIONS)
        if sampled is None:
            return math.nan
        model.train()
        tempered = logps(sampled[0], temperature)[0]
        scored = scores(*sampled, tempered).view(-1, GENERATIONS)
        loss = -(group_advantages(scored, kl_coef).flatten() * tempered).mean()
        policyloop.optimizer_step(model, optimizer, schedule, loss)
        return scored.mean().item()

    def held_out_scores() -> list[float]:
        """Each held-out prompt's mean score over its HELD_OUT_SAMPLES completions."""
        torch.manual_seed(args.seed)  # the same draw for every fraction: their differences are less noisy
        sampled = rollout(held_out, HELD_OUT_SAMPLES)
        if sampled is None:
            return [-math.inf] * len(held_out)
        with torch.no_grad():
            return scores(*sampled, logps(sampled[0], temperature)[0]).view(-1, HELD_OUT_SAMPLES).mean(1).tolist()

    batches = ([trained[i] for i in batch] for batch in fastloop.step_batches(len(trained), PROMPTS_PER_STEP, args.seed, MAX_EPOCHS))
    steps = policyloop.train_on_clock(step, batches, stop_at, reserve_steps=HELD_OUT_STEPS if held_out else 0.0)
    same_as_base = None
    if steps and held_out:
        tuned = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}

        def score_at(scale: float) -> list[float]:
            move_from_base(model, base, lora, tuned, scale)
            return held_out_scores()

        best, found = guarded_fraction(score_at, lambda needed: STOP_REQUESTED.is_set() or time.time() + needed >= stop_at)
        move_from_base(model, base, lora, tuned, best)
        say_saved(best, found)
        if best == 0.0:  # the weights are the base's, exactly (dpo.scale_toward_base at 0)
            same_as_base = (f"on {len(held_out)} held-out prompts no fraction of the way to the trained weights scored "
                            f"clearly above the base model (by more than {STANDARD_ERRORS:g} standard errors)")
    save(model, tokenizer, args.output_dir, same_as_base=same_as_base)
    return steps


def say_saved(best: float, found: dict[float, float]) -> None:
    """Print each scored fraction's held-out score and the one saved; when that is the base's own weights
    (the run then scores exactly as the base model), leave the note that says why (train.SAVED_NOTES)."""
    from train import SAVED_NOTES

    shown = ", ".join(f"{scale:g}: {value:.4f}" for scale, value in sorted(found.items()))
    print(f"held-out score by fraction of the way from the base ({shown}): saved {best:g}", flush=True)
    if best == 0.0:
        SAVED_NOTES.append(KEPT_BASE_NOTE)


def guarded_fraction(score_at, out_of_time) -> tuple[float, dict[float, float]]:
    """``best_fraction``, or (1, nothing) when it fails: the guard only refines, so a failure in it (out of
    memory: it samples twice a step's completions) still saves what was trained, as the contract asks."""
    try:
        return best_fraction(score_at, out_of_time)
    except Exception as error:  # noqa: BLE001 - whatever broke the guard, the trained weights are saved
        print(f"held-out guard failed ({type(error).__name__}: {error}); saving the trained weights", flush=True)
        return 1.0, {}


def best_fraction(score_at, out_of_time) -> tuple[float, dict[float, float]]:
    """(the fraction to save, each scored fraction's mean), scoring ``score_at(fraction)`` (per-prompt
    values on one draw) in SCALES' order while ``out_of_time(seconds)`` says another scoring, as long as
    the longest so far, still ends in time (under load one takes seconds: started just before the stop
    time, it ended past the deadline). The base (0) unless some fraction's
    mean per-prompt gain over it exceeds STANDARD_ERRORS standard errors; then the smallest such
    fraction within one standard error of the best gain. Base not scored: the best scored (none: 1).

    >>> best_fraction(lambda s: [0.1 * s * (1 - s) + e for e in (-0.01, 0.01)] * 8, lambda needed: False)[0]
    0.5
    >>> best_fraction(lambda s: [0.01 * s + e for e in ((-0.1, 0.1) if s else (0.1, -0.1))] * 8, lambda needed: False)[0]  # in the noise
    0.0
    >>> best_fraction(lambda s: [s], lambda needed: needed > 0)  # time for one scoring only: the trained model's
    (1.0, {1.0: 1.0})
    """
    found: dict[float, list[float]] = {}
    longest = 0.0
    for scale in SCALES:
        if out_of_time(longest):
            break
        started = time.monotonic()
        found[scale] = score_at(scale)
        longest = max(longest, time.monotonic() - started)
    means = {scale: sum(values) / len(values) for scale, values in found.items()}
    if 0.0 not in found:
        return max(means, key=means.__getitem__, default=1.0), means
    gains = {scale: paired_gain(values, found[0.0]) for scale, values in found.items() if scale != 0.0}
    clear = {scale: gain for scale, (gain, error) in gains.items() if gain > STANDARD_ERRORS * error}
    if not clear:
        return 0.0, means
    best = max(clear, key=clear.__getitem__)
    return min(scale for scale, gain in clear.items() if gain >= clear[best] - gains[best][1]), means


def paired_gain(values: list[float], base: list[float]) -> tuple[float, float]:
    """(mean of the per-prompt differences ``values - base``, its standard error).

    >>> paired_gain([1.0, 2.0, 3.0], [0.0, 1.0, 1.0])
    (1.3333333333333333, 0.3333333333333333)
    """
    differences = [v - b for v, b in zip(values, base, strict=True)]
    mean = sum(differences) / len(differences)
    if len(differences) < 2 or not math.isfinite(mean):
        return mean, math.inf
    variance = sum((d - mean) ** 2 for d in differences) / (len(differences) - 1)
    return mean, math.sqrt(variance / len(differences))


def move_from_base(model, base, lora: bool, tuned: dict, scale: float) -> None:
    """Weights = base + scale * (tuned - base), ``tuned`` the trained weights by name (for LoRA its
    adapter's: dpo.scale_toward_base scales the update through the B matrices)."""
    import torch
    from dpo import scale_toward_base

    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name in tuned:
                parameter.copy_(tuned[name])
    scale_toward_base(model, base, lora, scale)
