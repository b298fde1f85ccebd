"""Whole tournaments under random sizes, seeds and failure patterns (hypothesis)."""

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainarena.contract import Direction
from trainarena.engine import (
    Finished,
    LatentSkillPlayer,
    Stage,
    TournamentRecord,
    play_out,
    replay,
    tasks_at_most,
    tournament_weights,
)
from trainarena.engine.ranking import is_failed
from trainarena.settings import TournamentRules, WeightRules

RULES = TournamentRules()  # the paired boss rule
MAJORITY = TournamentRules(boss_rule="majority")
GATED = TournamentRules(boss_rule="majority", bootstrap_gate=True, bootstrap_resamples=200)


@st.composite
def tournaments(draw, max_entrants=2000):
    entrants = draw(st.integers(1, max_entrants))
    names = tuple(f"p{i}" for i in range(entrants))
    seed = draw(st.integers(0, 2**32))
    champion = draw(st.sampled_from([None, "king", names[0]]))
    truth = {n: 1.0 + 0.2 * ((i * 7919) % 101) / 101 for i, n in enumerate(names)} | {"king": draw(st.floats(0.5, 1.5))}
    always_fail = frozenset(draw(st.lists(st.sampled_from(names + ("king",)), max_size=5)))
    player = LatentSkillPlayer(
        truth,
        noise=draw(st.floats(0.0, 0.2)),
        seed=seed,
        direction=draw(st.sampled_from(list(Direction))),
        fail_probability=draw(st.sampled_from([0.0, 0.1, 0.5, 0.95, 1.0])),
        always_fail=always_fail,
        examples=draw(st.sampled_from([0, 16])),
    )
    rules = draw(st.sampled_from([RULES, MAJORITY, GATED]))
    return TournamentRecord(names, seed, draw(st.integers(1, 4)), champion), player, rules


def _check(record, player, rules):
    result = play_out(record, rules, player)
    finished = result.next
    assert isinstance(finished, Finished)
    # one champion, or the documented no-winner outcome (only when there was no champion to keep)
    if finished.champion is None:
        assert record.champion is None and finished.challenger is None
    else:
        assert finished.standings[0] == finished.champion
        assert finished.champion in record.entrants or finished.champion == record.champion
    assert len(set(finished.standings)) == len(finished.standings)
    if finished.crowned and record.champion is None:  # a title only for a script that trained at least once
        assert any(o.competitor == finished.champion and not is_failed(o)
                   for p in result.record.rounds for m in p.matches for task in m.tasks for o in task)
    for played in result.record.rounds:
        seats = [c for m in played.plan.matches for c in m.competitors] + list(played.plan.byes)
        assert len(seats) == len(set(seats)), "someone plays twice in a round"
        if played.plan.stage == Stage.KNOCKOUT:
            assert len(played.plan.byes) <= 1
    boss_rounds = [p for p in result.record.rounds if p.plan.stage == Stage.BOSS]
    assert len(boss_rounds) <= (rules.boss_rounds_max if rules.boss_rule == "paired" else 1)
    assert result.boss is None or result.boss.decided  # an unclear boss round never ends a tournament
    # A task pool drawn for tasks_at_most never runs out, whatever fails.
    played_tasks = sum(max(m.match.tasks for m in p.matches) for p in result.record.rounds)
    assert played_tasks <= tasks_at_most(len(record.entrants), record.champion is not None, rules, record.boss_tasks)
    weights = tournament_weights(finished, record.entrants, WeightRules())
    assert all(w >= 0.0 for w in weights.weights.values()) and weights.undistributed >= 0.0
    assert math.isclose(math.fsum(weights.weights.values()) + weights.undistributed, 1.0, abs_tol=1e-9)
    return result


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tournaments())
def test_any_tournament_ends_with_one_champion_or_no_winner(case):
    _check(*case)


@settings(max_examples=15, deadline=None)
@given(tournaments(max_entrants=300))
def test_identical_seeds_give_identical_results_and_replay_agrees(case):
    record, player, rules = case
    first = _check(record, player, rules)
    assert play_out(record, rules, player) == first
    assert replay(first.record, rules) == first


def test_two_thousand_entrants_with_heavy_failures():
    names = tuple(f"p{i}" for i in range(2000))
    player = LatentSkillPlayer(dict.fromkeys(names, 1.0) | {"king": 1.0}, 0.05, 1, fail_probability=0.6)
    _check(TournamentRecord(names, 1, 3, "king"), player, RULES)


def test_public_api_is_exactly_what_all_lists():
    import types

    import trainarena.engine as engine

    assert sorted(engine.__all__) == sorted(set(engine.__all__))
    for name in engine.__all__:
        assert getattr(engine, name) is not None
    submodules = {n for n, value in vars(engine).items() if isinstance(value, types.ModuleType)}
    public = {n for n in vars(engine) if not n.startswith("_")} - submodules
    assert public == set(engine.__all__)
