"""The train/hidden split of every task type, by group: examples that share a group key (the same
normalised prompt, the same image) always land on the same side, so the hidden split never holds a
prompt the train split also holds with another answer. Pure: no I/O, the same answer for the same
examples and seed, whatever their order.

How the hidden groups are chosen: the target is ``test_fraction`` of the rows (at least
``test_min_rows``, at most ``test_max_rows`` and at most all rows but one). The groups are ordered by
a seeded hash of their key (``split_seed``); walking that order, a group joins the hidden split when it
still fits under the target, so the hidden split holds exactly the target when groups are small, and
never more. When no group fits (every group is larger than the target) the hidden split is the smallest
group. A dataset with a single group cannot be split and is refused.

>>> from trainarena.settings import DataRules
>>> rows = [{"q": f"add {i} and 1"} for i in range(20)] + [{"q": "add 3 and 1"}]
>>> train, hidden = split_rows(rows, DataRules(), lambda row: normalise(row["q"]))
>>> len(train) + len(hidden) == 21 and not {r["q"] for r in train} & {r["q"] for r in hidden}
True
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable, Iterable
from typing import TypeVar

from trainarena.settings import DataRules
from trainarena.tasks.base import DatasetError

T = TypeVar("T")


def normalise(text: str) -> str:
    """A prompt as a group key: Unicode NFKC, case-folded, whitespace runs collapsed to one space.

    >>> normalise("  Add 2\\tand  3 ")
    'add 2 and 3'
    """
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def joined_key(parts: Iterable[str]) -> str:
    """One key from several normalised texts (a unit separator keeps ``("a b", "")`` apart from ``("a", "b")``)."""
    return "\x1f".join(normalise(part) for part in parts)


def hidden_target(rows: int, rules: DataRules) -> int:
    """How many rows the hidden split aims at: ``test_fraction`` of them, within the floor and the cap."""
    target = min(rules.test_max_rows, max(rules.test_min_rows, round(rows * rules.test_fraction)))
    return min(target, rows - 1)  # always leave something to train on


def split_rows(items: list[T], rules: DataRules, group_key: Callable[[T], str], source: str = "dataset") -> tuple[list[T], list[T]]:
    """``(train, hidden)``, both in source order, no group key on both sides, neither empty. Raises
    :class:`DatasetError` naming ``source`` when every item has the same key."""
    groups: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        groups.setdefault(group_key(item), []).append(index)
    if len(groups) < 2:
        raise DatasetError(
            f"{source}: all {len(items)} rows share one group key (the same prompt or image), so no hidden "
            "split can be drawn without showing its prompt in the train split; add rows with other prompts"
        )
    target = hidden_target(len(items), rules)
    order = sorted(groups, key=lambda key: (_seeded_hash(rules.split_seed, key), key))
    chosen: list[str] = []
    size = 0
    for key in order:
        if size + len(groups[key]) <= target:
            chosen.append(key)
            size += len(groups[key])
    if not chosen:  # every group is larger than the target: the smallest one, first in the seeded order
        chosen = [min(order, key=lambda key: len(groups[key]))]
    hidden = {index for key in chosen for index in groups[key]}
    return (
        [item for index, item in enumerate(items) if index not in hidden],
        [item for index, item in enumerate(items) if index in hidden],
    )


def _seeded_hash(seed: int, key: str) -> bytes:
    return hashlib.sha256(f"{seed}\x00{key}".encode()).digest()
