"""Synthetic, learnable instruction datasets generated from a seed (no download, no hub).

Each generator returns rows (plain dicts of strings) plus the column mapping an instruct task needs to
read them. The tasks are small and rule-based so a tiny model can visibly learn them in seconds:
arithmetic, string transforms, unit conversion, and a letter-count task stored under different column
names (with a system column) to exercise the field mapping.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

Row = dict[str, str]

# Column mapping shared by the datasets that use the conventional Alpaca-style names.
STANDARD_FIELDS = {"field_instruction": "instruction", "field_input": "input", "field_output": "output"}


@dataclass(frozen=True)
class SyntheticDataset:
    name: str
    rows: int  # how many rows the builder writes
    fields: dict[str, str]  # the field mapping of the instruct dataset spec
    generate: Callable[[random.Random, int], list[Row]]


@lru_cache(maxsize=1)
def word_list() -> tuple[str, ...]:
    """Lower-case words of 3-8 letters from Python's own documentation (public domain, offline)."""
    from pydoc_data.topics import topics

    words = set()
    for text in topics.values():
        words.update(w for w in re.findall(r"\b[a-z]{3,8}\b", text))
    return tuple(sorted(words))


def _arithmetic(rng: random.Random, n: int) -> list[Row]:
    rows = []
    for _ in range(n):
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        op = rng.choice(["add", "subtract", "multiply"])
        if op == "add":
            answer, phrase = a + b, f"add {a} and {b}"
        elif op == "subtract":
            a, b = max(a, b), min(a, b)
            answer, phrase = a - b, f"subtract {b} from {a}"
        else:
            a, b = a % 13, b % 13
            answer, phrase = a * b, f"multiply {a} by {b}"
        if rng.random() < 0.5:  # half with the numbers in the input column, half without an input
            rows.append({"instruction": f"Compute: {op} the numbers.", "input": f"{a} {b}", "output": str(answer)})
        else:
            rows.append({"instruction": phrase, "input": "", "output": str(answer)})
    return rows


_TRANSFORMS: dict[str, Callable[[str], str]] = {
    "Reverse the word.": lambda w: w[::-1],
    "Uppercase the word.": str.upper,
    "Capitalize the word.": str.capitalize,
    "Double the last letter.": lambda w: w + w[-1],
}


def _strings(rng: random.Random, n: int) -> list[Row]:
    words = word_list()
    rows = []
    for _ in range(n):
        instruction, transform = rng.choice(list(_TRANSFORMS.items()))
        word = rng.choice(words)
        rows.append({"instruction": instruction, "input": word, "output": transform(word)})
    return rows


_UNITS = (  # (from, to, factor)
    ("km", "m", 1000),
    ("m", "cm", 100),
    ("kg", "g", 1000),
    ("h", "min", 60),
    ("min", "s", 60),
    ("l", "ml", 1000),
)


def _units(rng: random.Random, n: int) -> list[Row]:
    rows = []
    for _ in range(n):
        src, dst, factor = rng.choice(_UNITS)
        value = rng.randint(1, 500)
        rows.append({"instruction": f"Convert to {dst}.", "input": f"{value} {src}", "output": f"{value * factor} {dst}"})
    return rows


def _letter_count(rng: random.Random, n: int) -> list[Row]:
    words = word_list()
    rows = []
    for _ in range(n):
        word = rng.choice(words)
        letter = rng.choice(word) if rng.random() < 0.8 else rng.choice("xyzq")
        rows.append({
            "sys": "You count letters exactly.",
            "question": f"How many times does '{letter}' occur?",
            "context": word,
            "answer": str(word.count(letter)),
        })
    return rows


DATASETS: tuple[SyntheticDataset, ...] = (
    SyntheticDataset("arithmetic", 1200, STANDARD_FIELDS, _arithmetic),
    SyntheticDataset("strings", 800, STANDARD_FIELDS, _strings),
    SyntheticDataset("units", 600, STANDARD_FIELDS, _units),
    SyntheticDataset(
        "letter_count_custom",
        600,
        {"field_system": "sys", "field_instruction": "question", "field_input": "context", "field_output": "answer"},
        _letter_count,
    ),
)


def generate(dataset: SyntheticDataset, seed: int) -> list[Row]:
    """The dataset's rows, all distinct (a duplicate would leak hidden rows into the train split); the
    same seed always gives the same rows."""
    rng = random.Random(f"{dataset.name}:{seed}")
    rows: dict[tuple[str, ...], Row] = {}
    for _ in range(20):  # each round tops up what duplicates removed; a few rounds always suffice
        for row in dataset.generate(rng, dataset.rows - len(rows)):
            rows.setdefault(tuple(row.values()), row)
        if len(rows) == dataset.rows:
            return list(rows.values())
    raise RuntimeError(f"{dataset.name}: cannot generate {dataset.rows} distinct rows")


def generic_lines(rng: random.Random, n: int) -> list[str]:
    """Plain statements about numbers, words and units (no instruction format) for pre-training, so the
    base model knows the vocabulary but still has the task format to learn when fine-tuned."""
    words = word_list()
    lines = []
    for _ in range(n):
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        word = rng.choice(words)
        src, dst, factor = rng.choice(_UNITS)
        lines.append(
            rng.choice([
                f"{a} plus {b} is {a + b}.",
                f"The word {word} has {len(word)} letters: {' '.join(word)}.",
                f"{word} in capitals is {word.upper()}.",
                f"One {src} is {factor} {dst}.",
                f"{a % 13} times {b % 13} is {(a % 13) * (b % 13)}.",
            ])
        )
    return lines
