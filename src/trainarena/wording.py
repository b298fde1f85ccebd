"""How counts and shares read in messages, shared by every layer (the engine's reasons as much as the
CLI's tables), so a count and its noun agree, and a share reads, the same way everywhere; and the name
of the house script, which every layer shows."""

from __future__ import annotations

# Who trained a model or a job when no competitor's script did: the platform's own reference script
# (examples/competitors/baseline), as every view, answer and filter names it.
HOUSE_SCRIPT = "house script"


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``"1 row"``, ``"2 rows"``: a count with its noun in the number the count takes."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def percent(share: float) -> str:
    """``0.2`` as ``"20%"``, ``0.025`` as ``"2.5%"``: three significant digits, so a small share never
    reads as 0%."""
    return f"{share * 100:.3g}%"


def with_article(noun: str) -> str:
    """``"an image"``, ``"a text"``: a lower-case noun with the article its first letter takes (by its
    spelling: the platform's nouns are plain words and task types, not abbreviations read letter by letter)."""
    return f"{'an' if noun[:1] in tuple('aeiou') else 'a'} {noun}"
