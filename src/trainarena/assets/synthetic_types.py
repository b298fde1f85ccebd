"""Synthetic, learnable datasets of the other text task types, generated from a seed:

- ``preference_arithmetic`` (DPO): an arithmetic question, the correct answer (chosen) and a near miss
  (rejected), so the preference is learnable and verifiable.
- ``preference_units_custom`` (DPO): unit conversions under other column names, with a system column.
- ``grpo_arithmetic`` (GRPO): an arithmetic statement to complete with its answer in an extra column, scored by a
  correctness reward (weight 1) and a format reward (weight 0.5: it starts with / is a bare number).
- ``chat_arithmetic`` (chat): 1-3 exchanges of arithmetic and conversions, ShareGPT style
  (``conversations`` of ``from``/``value``), so the role and content field names are exercised.

Each entry carries the dataset spec (without ``source``) its task type needs.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trainarena.assets.synthetic import _UNITS

# The reward functions of the GRPO dataset: plain Python source, TRL's reward signature.
CORRECTNESS_REWARD = '''
def correct_answer(completions, answer, **kwargs):
    """1.0 when the completion's first word is the expected answer, else 0.0."""
    scores = []
    for completion, expected in zip(completions, answer):
        words = completion.strip().split()
        scores.append(1.0 if words and words[0].rstrip(".") == expected else 0.0)
    return scores
'''
FORMAT_REWARD = '''
def leading_number(completions, **kwargs):
    """1.0 when the completion starts with an integer and says nothing after it, 0.5 when it starts with
    one, else 0.0: partial credit gives a tiny model's first samples a signal to learn from."""
    import re
    scores = []
    for completion in completions:
        text = completion.strip()
        scores.append(1.0 if re.fullmatch(r"-?[0-9]+", text) else 0.5 if re.match(r"-?[0-9]", text) else 0.0)
    return scores
'''


@dataclass(frozen=True)
class TypedSyntheticDataset:
    name: str
    task_type: str
    rows: int
    spec: dict[str, Any]  # the dataset spec without "source"
    generate: Callable[[random.Random, int], list[dict[str, Any]]]


def _question(rng: random.Random) -> tuple[str, int]:
    a, b = rng.randint(0, 99), rng.randint(0, 99)
    op = rng.choice(["add", "subtract", "multiply"])
    if op == "add":
        return f"add {a} and {b}", a + b
    if op == "subtract":
        a, b = max(a, b), min(a, b)
        return f"subtract {b} from {a}", a - b
    a, b = a % 13, b % 13
    return f"multiply {a} by {b}", a * b


def _near_miss(rng: random.Random, answer: int) -> int:
    return answer + rng.choice([-10, -2, -1, 1, 2, 10])


def _preference_arithmetic(rng: random.Random, n: int) -> list[dict[str, Any]]:
    rows = []
    for _ in range(n):
        question, answer = _question(rng)
        rows.append({"prompt": question, "chosen": str(answer), "rejected": str(_near_miss(rng, answer))})
    return rows


def _preference_units(rng: random.Random, n: int) -> list[dict[str, Any]]:
    rows = []
    for _ in range(n):
        src, dst, factor = rng.choice(_UNITS)
        value = rng.randint(1, 500)
        wrong = value * factor * rng.choice([10, 100]) if rng.random() < 0.5 else value
        rows.append({
            "sys": "You convert units exactly.",
            "question": f"Convert {value} {src} to {dst}.",
            "good": f"{value * factor} {dst}",
            "bad": f"{wrong} {dst}",
        })
    return rows


def _grpo_arithmetic(rng: random.Random, n: int) -> list[dict[str, Any]]:
    """Statements to complete in the pre-training text's own words ("12 plus 7 is"), so that the base
    model's samples already start with a number now and then: GRPO needs some reward to begin with."""
    rows = []
    for _ in range(n):
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        if rng.random() < 0.6:
            rows.append({"question": f"{a} plus {b} is", "answer": str(a + b)})
        else:
            rows.append({"question": f"{a % 13} times {b % 13} is", "answer": str((a % 13) * (b % 13))})
    return rows


def _exchange(rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.6:
        question, answer = _question(rng)
        return question, str(answer)
    src, dst, factor = rng.choice(_UNITS)
    value = rng.randint(1, 500)
    return f"Convert {value} {src} to {dst}.", f"{value * factor} {dst}"


def _chat_arithmetic(rng: random.Random, n: int) -> list[dict[str, Any]]:
    rows = []
    for _ in range(n):
        turns = [{"from": "system", "value": "You answer with the number only."}] if rng.random() < 0.3 else []
        for _ in range(rng.randint(1, 3)):
            question, answer = _exchange(rng)
            turns += [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]
        rows.append({"conversations": turns})
    return rows


TYPED_DATASETS: tuple[TypedSyntheticDataset, ...] = (
    TypedSyntheticDataset(
        "preference_arithmetic", "dpo", 800,
        {"field_prompt": "prompt", "field_chosen": "chosen", "field_rejected": "rejected"},
        _preference_arithmetic,
    ),
    TypedSyntheticDataset(
        "preference_units_custom", "dpo", 500,
        {"field_prompt": "question", "field_chosen": "good", "field_rejected": "bad", "field_system": "sys"},
        _preference_units,
    ),
    TypedSyntheticDataset(
        "grpo_arithmetic", "grpo", 500,
        {
            "field_prompt": "question",
            "field_extra": "answer",
            "response_separator": "",  # the prompt is a statement to complete, not a question
            "reward_functions": [
                {"source": CORRECTNESS_REWARD.strip() + "\n", "weight": 1.0, "range": [0.0, 1.0]},
                {"source": FORMAT_REWARD.strip() + "\n", "weight": 0.5, "range": [0.0, 1.0]},
            ],
        },
        _grpo_arithmetic,
    ),
    TypedSyntheticDataset(
        "chat_arithmetic", "chat", 600,
        {"field_messages": "conversations", "field_role": "from", "field_content": "value",
         "role_map": {"human": "user", "gpt": "assistant", "system": "system"}},
        _chat_arithmetic,
    ),
)


def generate_typed(dataset: TypedSyntheticDataset, seed: int) -> list[dict[str, Any]]:
    """Distinct rows (no train/hidden leakage through duplicates), the same for the same seed."""
    import json

    rng = random.Random(f"{dataset.name}:{seed}")
    rows: dict[str, dict[str, Any]] = {}
    for _ in range(20):
        for row in dataset.generate(rng, dataset.rows - len(rows)):
            rows.setdefault(json.dumps(row, sort_keys=True), row)
        if len(rows) == dataset.rows:
            return list(rows.values())
    raise RuntimeError(f"{dataset.name}: cannot generate {dataset.rows} distinct rows")
