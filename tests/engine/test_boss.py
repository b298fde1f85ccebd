import numpy as np
import pytest

from trainarena.contract import Direction
from trainarena.engine import Match, PlayedMatch, bootstrap_win_fraction, boss_decision, required_lead
from trainarena.engine.boss import boss_task
from trainarena.settings import TournamentRules

from .helpers import outcome

RULES = TournamentRules(boss_rule="majority")  # margin 5%, floor 1e-3
GATED = TournamentRules(boss_rule="majority", bootstrap_gate=True, bootstrap_resamples=500)


def _task(challenger, champion, direction=Direction.LOWER, rules=RULES, ours=(), theirs=()):
    return boss_task(0, outcome("new", challenger, ours), outcome("old", champion, theirs), direction, rules)


def _boss(pairs, direction=Direction.LOWER, rules=RULES):
    tasks = tuple((outcome("new", a), outcome("old", b)) for a, b in pairs)
    played = PlayedMatch(Match("boss", ("new", "old"), len(pairs), 1), (direction,) * len(pairs), tasks)
    return boss_decision(played, "new", "old", rules)


@pytest.mark.parametrize(
    ("challenger", "champion", "direction", "taken"),
    [
        (0.94, 1.0, Direction.LOWER, True),  # 6% lower loss
        (0.96, 1.0, Direction.LOWER, False),  # 4%: not enough
        (1.06, 1.0, Direction.HIGHER, True),
        (1.04, 1.0, Direction.HIGHER, False),
        # Negative higher-is-better scores: champion -1.0 needs the challenger at -0.95 or above.
        # (G.O.D's "champion * 1.05" = -1.05 would have let a worse challenger, -1.04, through.)
        (-0.94, -1.0, Direction.HIGHER, True),
        (-1.04, -1.0, Direction.HIGHER, False),
        (-0.96, -1.0, Direction.HIGHER, False),
        # Negative lower-is-better: champion -1.0 needs -1.05 or below.
        (-1.06, -1.0, Direction.LOWER, True),
        (-1.04, -1.0, Direction.LOWER, False),
    ],
)
def test_margin_is_relative_to_the_champions_magnitude_in_either_direction(challenger, champion, direction, taken):
    assert _task(challenger, champion, direction).taken is taken


def test_champion_scoring_zero_needs_the_absolute_floor():
    assert required_lead(0.0, RULES) == RULES.boss_margin_floor
    assert not _task(1e-9, 0.0, Direction.HIGHER).taken
    assert _task(2e-3, 0.0, Direction.HIGHER).taken


def test_result_spells_out_the_margin_check():
    result = _task(0.9, 1.0)
    assert result.lead == pytest.approx(0.1)
    assert result.required_lead == pytest.approx(0.05)
    assert result.margin_met and result.taken and result.bootstrap_met is None


def test_failed_runs():
    assert _task(1.0, None).taken  # champion failed, challenger succeeded
    assert not _task(None, 1.0).taken  # challenger failed
    both = _task(None, float("nan"))
    assert not both.taken and "both" in both.reason


def test_crowned_only_by_strict_majority():
    assert _boss([(0.5, 1.0), (0.5, 1.0), (1.0, 1.0)]).crowned
    one_of_three = _boss([(0.5, 1.0), (1.0, 1.0), (1.0, 1.0)])
    assert not one_of_three.crowned and (one_of_three.taken, one_of_three.needed) == (1, 2)
    assert not _boss([(0.5, 1.0), (1.0, 1.0)]).crowned  # 1 of 2 is not a majority
    # both failed on two tasks counts against the challenger
    assert not _boss([(0.5, 1.0), (None, None), (None, None)]).crowned


def test_boss_match_must_hold_exactly_the_two_players():
    played = PlayedMatch(Match("boss", ("new", "old"), 1, 1), (Direction.LOWER,), ((outcome("new", 1.0), outcome("old", 2.0)),))
    with pytest.raises(ValueError, match="exactly"):
        boss_decision(played, "new", "someone", RULES)


def test_bootstrap_gate_passes_a_consistent_lead_and_blocks_a_noisy_one():
    rng = np.random.default_rng(0)
    theirs = 1.0 + 0.05 * rng.standard_normal(200)
    consistent = theirs - 0.1
    ok = _task(float(consistent.mean()), float(theirs.mean()), rules=GATED, ours=consistent, theirs=theirs)
    assert ok.taken and ok.bootstrap_met and ok.bootstrap_win_fraction == 1.0
    # Mean lead 0.05 per example but swinging +-1: the task-level margin is met, the evidence is not.
    swings = np.tile([1.0, -0.9], 10)
    noisy = theirs[:20] - swings
    blocked = _task(0.5, 1.0, rules=GATED, ours=noisy, theirs=theirs[:20])
    assert blocked.margin_met and blocked.bootstrap_met is False and not blocked.taken
    assert blocked.bootstrap_win_fraction is not None and 0.3 < blocked.bootstrap_win_fraction < GATED.bootstrap_confidence


def test_bootstrap_gate_without_per_example_scores_is_not_satisfied():
    result = _task(0.5, 1.0, rules=GATED)
    assert result.margin_met and result.bootstrap_met is False and not result.taken
    assert "missing" in result.reason
    mismatched = _task(0.5, 1.0, rules=GATED, ours=(0.5, 0.5), theirs=(1.0,))
    assert not mismatched.taken


def test_bootstrap_fraction_is_deterministic_vectorised_and_signed():
    leads = np.array([[0.1, 0.2, 0.05, 0.3], [-0.1, -0.2, -0.05, -0.3], [0.0, 0.0, 0.0, 0.0]])
    fractions = bootstrap_win_fraction(leads, 300, 7)
    assert fractions.shape == (3,)
    assert fractions.tolist() == [1.0, 0.0, 0.0]
    mixed = np.array([0.5, -0.4, 0.3, -0.2, 0.1])
    assert bootstrap_win_fraction(mixed, 300, 7) == bootstrap_win_fraction(mixed, 300, 7)
    assert 0.0 < float(bootstrap_win_fraction(mixed, 300, 7)) < 1.0
