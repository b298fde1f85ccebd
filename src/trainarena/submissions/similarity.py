"""Near-duplicate measure: winnowed fingerprints of normalised Python tokens, as MOSS does.

Method: Schleimer, Wilkerson and Aiken, "Winnowing: local algorithms for document fingerprinting"
(SIGMOD 2003). Each Python file is reduced to its tokens without comments, docstrings or layout (the
source digest's tokens), and every identifier becomes ``N``, every string ``S`` and every number ``0``:
renamed variables, reworded strings and retuned constants change nothing. Every run of ``k`` tokens
(a k-gram) is hashed; of every ``window`` consecutive hashes the smallest is kept. Any run of at least
``window + k - 1`` tokens two trees share gives both a common fingerprint; runs shorter than ``k``
never count. Reordering functions or adding dead code changes only the k-grams at the seams.

The similarity of two trees is the overlap coefficient of their fingerprint sets,
``|A & B| / min(|A|, |B|)``: how much of the smaller tree is found in the larger. Unlike Jaccard
(``|A & B| / |A | B|``) it does not fall when a copy is padded with unrelated code (doubling a copy
with dead code halves Jaccard), and it is symmetric, so the order of registration does not matter.
A tiny tree is contained in many big ones by chance, so the denominator is at least ``min_size``.

Pure: bytes in, numbers out; the fingerprint cache and the store are in ``submissions.copies``.
"""

from __future__ import annotations

import hashlib
import keyword
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from trainarena.submissions.digest import code_tokens

# Part of the fingerprint cache's key: change it when the normalisation or the hashing changes.
FINGERPRINT_VERSION = "winnow-v1"
_STRINGS = frozenset(
    getattr(tokenize, name) for name in ("STRING", "FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END") if hasattr(tokenize, name)
)


def normalised_tokens(source: bytes) -> list[str]:
    """The code tokens of a Python file with identifiers, strings and numbers each replaced by one
    symbol (keywords and operators kept); empty when the file does not tokenize."""
    tokens = code_tokens(source) or []
    return [_symbol(token) for token in tokens if token.type != tokenize.ENDMARKER]


def _symbol(token: tokenize.TokenInfo) -> str:
    if token.type == tokenize.NAME:
        return token.string if keyword.iskeyword(token.string) else "N"
    if token.type in _STRINGS:
        return "S"
    if token.type == tokenize.NUMBER:
        return "0"
    if token.type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
        return tokenize.tok_name[token.type]
    return token.string


def kgram_hashes(tokens: list[str], k: int) -> list[int]:
    """A stable 64-bit hash of every run of ``k`` tokens (stable across processes, unlike ``hash``)."""
    return [
        int.from_bytes(hashlib.blake2b("\x00".join(tokens[i : i + k]).encode(), digest_size=8).digest(), "big")
        for i in range(len(tokens) - k + 1)
    ]


def winnow(hashes: list[int], window: int) -> set[int]:
    """The smallest hash of every ``window`` consecutive hashes (all of them' minimum when fewer)."""
    if not hashes:
        return set()
    if len(hashes) <= window:
        return {min(hashes)}
    return {min(hashes[i : i + window]) for i in range(len(hashes) - window + 1)}


def tree_fingerprints(files: Iterable[tuple[str, bytes]], *, k: int, window: int) -> frozenset[int]:
    """The fingerprints of the ``.py`` files among ``(path, content)`` pairs; k-grams stay inside a
    file, so file names and order do not matter."""
    fingerprints: set[int] = set()
    for path, content in files:
        if PurePosixPath(path).suffix == ".py":
            fingerprints |= winnow(kgram_hashes(normalised_tokens(content), k), window)
    return frozenset(fingerprints)


def similarity(a: frozenset[int], b: frozenset[int], *, min_size: int = 1) -> float:
    """Overlap coefficient of two fingerprint sets, its denominator at least ``min_size``: 1.0 when
    the smaller is inside the larger, 0.0 when they share nothing (or either is empty)."""
    if not a or not b:
        return 0.0
    return len(a & b) / max(min(len(a), len(b)), min_size)


@dataclass(frozen=True)
class Closest:
    """The registered competitor whose code is most like a new one's."""

    name: str
    similarity: float


def closest(new: frozenset[int], others: Iterable[tuple[str, frozenset[int]]], *, min_size: int = 1) -> Closest | None:
    """The most similar of ``(name, fingerprints)`` pairs (ties: the first); None when there are none."""
    best: Closest | None = None
    for name, fingerprints in others:
        score = similarity(new, fingerprints, min_size=min_size)
        if best is None or score > best.similarity:
            best = Closest(name, score)
    return best
