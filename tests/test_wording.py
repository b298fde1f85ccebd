"""Counts agree with their nouns, in every layer's messages (the engine's boss reasons included)."""

from __future__ import annotations

from trainarena.wording import counted, percent


def test_a_count_takes_its_noun_in_the_number_it_needs() -> None:
    assert [counted(n, "boss round") for n in (0, 1, 2)] == ["0 boss rounds", "1 boss round", "2 boss rounds"]
    assert [counted(n, "entry", "entries") for n in (1, 3)] == ["1 entry", "3 entries"]


def test_a_share_reads_with_three_significant_digits_and_never_as_zero() -> None:
    assert [percent(share) for share in (0.5, 0.2, 0.025, 0.001234, 1e-300)] == ["50%", "20%", "2.5%", "0.123%", "1e-298%"]
