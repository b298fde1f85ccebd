"""Counts agree with their nouns, in every layer's messages (the engine's boss reasons included)."""

from __future__ import annotations

from trainarena.wording import counted


def test_a_count_takes_its_noun_in_the_number_it_needs() -> None:
    assert [counted(n, "boss round") for n in (0, 1, 2)] == ["0 boss rounds", "1 boss round", "2 boss rounds"]
    assert [counted(n, "entry", "entries") for n in (1, 3)] == ["1 entry", "3 entries"]
