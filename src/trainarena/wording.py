"""How counts and shares read in messages, shared by every layer (the engine's reasons as much as the
CLI's tables), so a count and its noun agree, and a share reads, the same way everywhere; the name
of the house script, which every layer shows; and how a score column says which way is better, the
same in the CLI's tables and the dashboard's."""

from __future__ import annotations

from collections.abc import Iterable

from trainarena.contract import Direction

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


# Which way a score is better, as a score column says it: lower (a loss) or higher (a GRPO reward).
BETTER_ARROWS = {Direction.LOWER: "↓", Direction.HIGHER: "↑"}


class ScoreColumn:
    """How a table's score column says which way is better, from the directions of its rows' task types:
    in its heading when every row's is the same (``score↓``: lower is better; ``score↑``: higher),
    else beside each score (``0.4200↑``), since one heading cannot speak for both. The arrow takes one
    cell and no space: a table that fitted 80 columns before still fits."""

    def __init__(self, directions: Iterable[str | None]) -> None:
        self._directions = {direction for direction in directions if direction in BETTER_ARROWS}

    @property
    def mixed(self) -> bool:
        return len(self._directions) > 1

    def heading(self, label: str = "score") -> str:
        if len(self._directions) != 1:
            return label
        return f"{label}{BETTER_ARROWS[next(iter(self._directions))]}"

    def meaning(self) -> str:
        """The heading's arrow in words (``lower is better``), for a tooltip; empty where it has none."""
        return f"{next(iter(self._directions))} is better" if len(self._directions) == 1 else ""

    def cell(self, text: str, direction: str | None) -> str:
        """``text`` (a score as the table prints it) with its row's arrow when the heading has none;
        a cell without a score (``-``, empty, a status) stays as it is."""
        if not self.mixed or direction not in BETTER_ARROWS or not text or not text[-1].isdigit():
            return text
        return f"{text}{BETTER_ARROWS[direction]}"
