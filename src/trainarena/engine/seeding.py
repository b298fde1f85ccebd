"""Seeded draws derived from the tournament seed and a label, never from global random state.

Every draw the engine makes (group shuffle, knockout pairing, tie breaks) comes from a generator
seeded by ``sha256(repr((seed, *labels)))``, so anyone holding the record gets the same draw in any
process (Python's own ``hash`` is salted per process and would not do).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np


def derived_seed(*parts: int | str) -> int:
    """A 64-bit seed that depends only on ``parts`` (ints and strings)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def derived_rng(*parts: int | str) -> np.random.Generator:
    return np.random.default_rng(derived_seed(*parts))


def seeded_order(items: Sequence[str], *parts: int | str) -> tuple[str, ...]:
    """``items`` in the order of a seeded draw labelled by ``parts``."""
    permutation = derived_rng(*parts).permutation(len(items))
    return tuple(items[i] for i in permutation)
