import math

import pytest

from trainarena.engine import Finished, hybrid_ratio, hybrid_weights, tournament_weights
from trainarena.settings import WeightRules

RULES = WeightRules()  # champion 0.5, placed 0.4, decay 0.5


def _finished(champion, standings):
    return Finished(champion, True, champion, standings, "test")


def test_champion_share_and_geometric_decay_over_the_placed():
    result = tournament_weights(_finished("a", ("a", "b", "c", "d")), ("a", "b", "c", "d", "e"), RULES)
    # placed weights 0.4 * (1, 1/2, 1/4) / 1.75
    assert result.weights["a"] == 0.5
    assert result.weights["b"] == pytest.approx(0.4 / 1.75)
    assert result.weights["c"] == pytest.approx(0.2 / 1.75)
    assert result.weights["d"] == pytest.approx(0.1 / 1.75)
    assert result.weights["e"] == 0.0  # entered, never placed
    assert result.undistributed == pytest.approx(0.1)
    assert math.fsum(result.weights.values()) + result.undistributed == pytest.approx(1.0)


def test_champion_alone_leaves_the_placed_share_undistributed():
    result = tournament_weights(_finished("a", ("a",)), ("a",), RULES)
    assert result.weights == {"a": 0.5} and result.undistributed == pytest.approx(0.5)


def test_no_winner_is_all_remainder():
    result = tournament_weights(Finished(None, False, None, (), "no winner"), ("a", "b"), RULES)
    assert result.weights == {"a": 0.0, "b": 0.0} and result.undistributed == 1.0


def test_retained_champion_who_did_not_enter_is_paid():
    result = tournament_weights(Finished("king", False, "a", ("king", "a"), "retained"), ("a", "b"), RULES)
    assert result.weights["king"] == 0.5 and result.weights["a"] == pytest.approx(0.4)


def test_long_standings_stay_non_negative_and_sum_to_one():
    names = tuple(f"p{i}" for i in range(5000))
    result = tournament_weights(_finished(names[0], names), names, WeightRules(champion_share=0.3, placed_share=0.7))
    assert min(result.weights.values()) >= 0.0
    assert math.fsum(result.weights.values()) + result.undistributed == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(("week", "ratio"), [(0, 0.25), (1, 0.5), (3, 1.0), (50, 1.0)])
def test_hybrid_ratio_grows_by_step_up_to_the_cap(week, ratio):
    assert hybrid_ratio(week, RULES) == ratio


def test_hybrid_mix_over_the_union_of_keys():
    mixed = hybrid_weights({"a": 0.6, "burn": 0.4}, {"a": 0.2, "z": 0.8}, week=1, rules=RULES)  # ratio 0.5
    assert mixed == pytest.approx({"a": 0.4, "burn": 0.2, "z": 0.4})
    assert math.fsum(mixed.values()) == pytest.approx(1.0)
    capped = hybrid_weights({"a": 1.0}, {"z": 1.0}, week=2, rules=WeightRules(hybrid_cap=0.6))
    assert capped == pytest.approx({"a": 0.6, "z": 0.4})


def test_hybrid_rejects_bad_input():
    with pytest.raises(ValueError, match="week"):
        hybrid_weights({}, {}, week=-1, rules=RULES)
    with pytest.raises(ValueError, match="legacy"):
        hybrid_weights({"a": 1.0}, {"z": -0.1}, week=0, rules=RULES)
