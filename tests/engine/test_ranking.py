import math

import pytest

from trainarena.contract import Direction
from trainarena.engine import Match, PlayedMatch, decide_match, rank_task
from trainarena.settings import TournamentRules

from .helpers import outcome, played

RULES = TournamentRules()


def test_rank_task_lower_is_better_with_failures_last():
    outcomes = [outcome("a", 2.0), outcome("b", None), outcome("c", 1.0), outcome("d", math.nan), outcome("e", math.inf)]
    assert rank_task(outcomes, Direction.LOWER) == ("c", "a", "b", "d", "e")


def test_rank_task_higher_is_better_handles_negative_scores():
    outcomes = [outcome("a", -2.0), outcome("b", -0.5), outcome("c", -math.inf), outcome("d", 0.0)]
    assert rank_task(outcomes, Direction.HIGHER) == ("d", "b", "a", "c")


def test_rank_task_exact_ties_keep_input_order():
    assert rank_task([outcome("x", 1.0), outcome("y", 1.0)], Direction.LOWER) == ("x", "y")
    assert rank_task([outcome("y", 1.0), outcome("x", 1.0)], Direction.LOWER) == ("y", "x")


def test_rank_task_rejects_unknown_direction():
    with pytest.raises(ValueError, match="unknown direction"):
        rank_task([outcome("a", 1.0)], "sideways")  # type: ignore[arg-type]


def test_points_count_competitors_beaten_and_top_k_advance():
    match = played("g", [{"a": 3.0, "b": 1.0, "c": 2.0, "d": None}], advance=2)
    decision = decide_match(match, RULES, seed=0)
    assert decision.ranking == ("b", "c", "a", "d")
    assert decision.points == (3, 2, 1, 0)
    assert decision.advancers == ("b", "c")
    assert decision.task_winners == ("b",)


def test_points_add_up_over_tasks():
    match = played("g", [{"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 3.0, "b": 1.0, "c": 2.0}, {"a": 3.0, "b": 1.0, "c": 2.0}])
    decision = decide_match(match, RULES, seed=0)
    assert decision.ranking == ("b", "a", "c")  # b: 1+2+2=5, a: 2+0+0=2, c: 0+1+1=2 -> a/c tie by draw
    assert decision.points[0] == 5
    assert decision.task_winners == ("a", "b", "b")


def test_failed_competitor_never_advances_even_with_room():
    match = played("g", [{"a": 1.0, "b": None, "c": None}], advance=2)
    assert decide_match(match, RULES, seed=0).advancers == ("a",)


def test_everyone_failed_advances_nobody_and_task_has_no_winner():
    match = played("g", [{"a": None, "b": math.nan}, {"a": None, "b": None}])
    decision = decide_match(match, RULES, seed=3)
    assert decision.advancers == ()
    assert decision.task_winners == (None, None)
    assert decision.points == (0, 0)


def test_exact_ties_are_broken_by_a_seeded_draw_from_seed_and_match_id():
    names = [f"p{i}" for i in range(8)]
    match = played("r1-k001", [dict.fromkeys(names, 1.0)])
    first = decide_match(match, RULES, seed=11)
    assert first == decide_match(match, RULES, seed=11)
    assert first.points == (0,) * 8  # an exact tie beats nobody
    assert first.task_winners[0] == first.ranking[0]
    orders = {decide_match(match, RULES, seed=s).ranking for s in range(20)}
    assert len(orders) > 1  # the draw depends on the seed
    other_id = played("r1-k002", [dict.fromkeys(names, 1.0)])
    assert any(decide_match(other_id, RULES, seed=s).ranking != decide_match(match, RULES, seed=s).ranking for s in range(5))


def test_missing_outcome_counts_as_failed():
    match = Match("k", ("a", "b"), 1, 1)
    decision = decide_match(PlayedMatch(match, (Direction.LOWER,), ((outcome("b", 5.0),),)), RULES, seed=0)
    assert decision.advancers == ("b",)


def test_outcome_of_a_stranger_or_a_duplicate_is_rejected():
    match = Match("k", ("a", "b"), 1, 1)
    with pytest.raises(ValueError, match="not in this match"):
        decide_match(PlayedMatch(match, (Direction.LOWER,), ((outcome("z", 1.0),),)), RULES, seed=0)
    with pytest.raises(ValueError, match="two outcomes"):
        decide_match(PlayedMatch(match, (Direction.LOWER,), ((outcome("a", 1.0), outcome("a", 2.0)),)), RULES, seed=0)


def test_wrong_number_of_tasks_is_rejected():
    match = Match("k", ("a", "b"), 2, 1)
    with pytest.raises(ValueError, match="2 tasks planned"):
        decide_match(PlayedMatch(match, (Direction.LOWER,), ((outcome("a", 1.0), outcome("b", 2.0)),)), RULES, seed=0)
