"""Counts agree with their nouns, in every layer's messages (the engine's boss reasons included); a
score column says which way is better."""

from __future__ import annotations

from trainarena.wording import ScoreColumn, counted, percent


def test_a_count_takes_its_noun_in_the_number_it_needs() -> None:
    assert [counted(n, "boss round") for n in (0, 1, 2)] == ["0 boss rounds", "1 boss round", "2 boss rounds"]
    assert [counted(n, "entry", "entries") for n in (1, 3)] == ["1 entry", "3 entries"]


def test_a_share_reads_with_three_significant_digits_and_never_as_zero() -> None:
    assert [percent(share) for share in (0.5, 0.2, 0.025, 0.001234, 1e-300)] == ["50%", "20%", "2.5%", "0.123%", "1e-298%"]


def test_a_score_column_says_which_way_is_better_in_its_heading_or_beside_each_score() -> None:
    losses = ScoreColumn(["lower", None, "lower"])  # a run not scored yet has its task type's direction, or none
    assert (losses.heading(), losses.heading("best"), losses.meaning(), losses.cell("1.2345", "lower")) == ("score↓", "best↓", "lower is better", "1.2345")
    rewards = ScoreColumn(["higher"])
    assert (rewards.heading("scores"), rewards.meaning()) == ("scores↑", "higher is better")
    mixed = ScoreColumn(["lower", "higher"])  # one heading cannot speak for both: each score says it
    assert (mixed.heading(), mixed.meaning()) == ("score", "")
    assert [mixed.cell("0.5000", "higher"), mixed.cell("1.20", "lower"), mixed.cell("-", "lower"), mixed.cell("failed", "higher")] == [
        "0.5000↑", "1.20↓", "-", "failed"]
    assert ScoreColumn([None]).heading() == "score" and ScoreColumn([]).cell("1.0", None) == "1.0"
