"""How counts read in messages, shared by every layer (the engine's reasons as much as the CLI's
tables), so a count and its noun agree the same way everywhere."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``"1 row"``, ``"2 rows"``: a count with its noun in the number the count takes."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
