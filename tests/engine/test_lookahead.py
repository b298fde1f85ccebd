"""Looking one round ahead (engine.lookahead): a foreseen round is the round the tournament plays next
whenever the open round's unfinished runs succeed, whatever their scores."""

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from trainarena.contract import Direction
from trainarena.engine import (
    LatentSkillPlayer,
    Match,
    PlayedRound,
    PlayRound,
    RoundPlan,
    Stage,
    TaskOutcome,
    TournamentRecord,
    next_step,
    play_out,
)
from trainarena.engine.lookahead import OpenMatch, defender_boss_places, foreseen_round, round_places
from trainarena.settings import TournamentRules

from .helpers import outcome

KNOCKOUT = TournamentRules()
GROUPS = TournamentRules(group_stage_min_entrants=8, group_size_min=3, group_size_max=5, group_advance=2, group_tasks=2)


def _open(played: PlayedRound, unfinished: set[tuple[str, int, str]]) -> tuple[OpenMatch, ...]:
    return tuple(
        OpenMatch(m.match, m.directions,
                  tuple(tuple(None if (m.match.match_id, i, o.competitor) in unfinished else o for o in task)
                        for i, task in enumerate(m.tasks)))
        for m in played.matches
    )


def _completed(played: PlayedRound, unfinished: set[tuple[str, int, str]], scores: st.DataObject) -> PlayedRound:
    """``played`` with every unfinished run succeeding, with scores drawn anew."""
    matches = []
    for m in played.matches:
        tasks = tuple(
            tuple(TaskOutcome(o.competitor, scores.draw(st.floats(-5, 5))) if (m.match.match_id, i, o.competitor) in unfinished else o
                  for o in task)
            for i, task in enumerate(m.tasks))
        matches.append(replace(m, tasks=tasks))
    return replace(played, matches=tuple(matches))


def _settled_but_unfinished(played: PlayedRound, data: st.DataObject) -> tuple[PlayedRound, set[tuple[str, int, str]]]:
    """``played`` where, in some matches, everyone but at most ``advance`` competitors failed every task
    and some runs of those few are unfinished."""
    matches, unfinished = [], set()
    for m in played.matches:
        if not data.draw(st.booleans()):
            matches.append(m)
            continue
        competitors = m.match.competitors
        left = set(data.draw(st.lists(st.sampled_from(competitors), min_size=1, max_size=m.match.advance, unique=True)))
        tasks = tuple(tuple(o if o.competitor in left else outcome(o.competitor, None) for o in task) for task in m.tasks)
        matches.append(replace(m, tasks=tasks))
        places = [(m.match.match_id, i, c) for i in range(m.match.tasks) for c in sorted(left)]
        unfinished |= set(data.draw(st.lists(st.sampled_from(places), min_size=1, unique=True)))
    return replace(played, matches=tuple(matches)), unfinished


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    entrants=st.integers(1, 40),
    seed=st.integers(0, 2**32),
    champion=st.sampled_from([None, "king", "p0"]),
    rules=st.sampled_from([KNOCKOUT, GROUPS]),
    fail_probability=st.sampled_from([0.0, 0.2, 0.6]),
    data=st.data(),
)
def test_a_foreseen_round_is_played_next_whenever_the_unfinished_runs_succeed(entrants, seed, champion, rules,
                                                                                fail_probability, data):
    names = tuple(f"p{i}" for i in range(entrants))
    truth = {n: 1.0 + (i % 7) / 10 for i, n in enumerate(names)} | {"king": 1.2}
    player = LatentSkillPlayer(truth, noise=0.1, seed=seed, direction=Direction.LOWER, fail_probability=fail_probability)
    record = TournamentRecord(names, seed, 3, champion)
    rounds = play_out(record, rules, player).record.rounds
    index = data.draw(st.integers(0, len(rounds) - 1)) if rounds else None
    if index is None:
        return
    before, played = replace(record, rounds=rounds[:index]), rounds[index]
    if data.draw(st.booleans()):  # runs left anywhere: mostly a round whose next round is still open
        places = round_places(played.plan)
        unfinished = set(data.draw(st.lists(st.sampled_from(places), max_size=len(places), unique=True)))
    else:  # matches where no more can score than advance: the next round is fixed before their end
        played, unfinished = _settled_but_unfinished(played, data)
    foreseen = foreseen_round(before, played.plan, _open(played, unfinished), rules)
    if not unfinished:  # nothing left to guess: the round foreseen is the one played next
        actual = next_step(replace(before, rounds=(*before.rounds, played)), rules)
        assert foreseen == (actual.plan if isinstance(actual, PlayRound) and played.plan.stage != Stage.BOSS else None)
    event(f"foreseen: {foreseen is not None}, runs unfinished: {bool(unfinished)}")
    if foreseen is None:
        return
    assert played.plan.stage != Stage.BOSS
    for _ in range(3):  # whatever the scores of the runs still training
        completed = _completed(played, unfinished, data)
        step = next_step(replace(before, rounds=(*before.rounds, completed)), rules)
        assert isinstance(step, PlayRound) and step.plan == foreseen


def _final(a: TaskOutcome | None, b: TaskOutcome | None) -> tuple[TournamentRecord, RoundPlan, tuple[OpenMatch, ...]]:
    """A two-entrant tournament's final (a knockout pair) against a defending champion, played so far."""
    record = TournamentRecord(("a", "b"), 7, 3, "king")
    step = next_step(record, KNOCKOUT)
    assert isinstance(step, PlayRound) and step.plan.stage == Stage.KNOCKOUT
    (match,) = step.plan.matches
    by_name = {"a": a, "b": b}
    return record, step.plan, (OpenMatch(match, (Direction.LOWER,), ((by_name[match.competitors[0]], by_name[match.competitors[1]]),)),)


def test_a_finalist_whose_opponent_failed_is_foreseen_in_the_boss_round_while_still_training():
    record, plan, matches = _final(outcome("a", None), None)
    foreseen = foreseen_round(record, plan, matches, KNOCKOUT)
    assert foreseen is not None and foreseen.stage == Stage.BOSS
    assert foreseen.matches == (Match("boss", ("b", "king"), 3, 1),)
    assert round_places(foreseen) == tuple(("boss", i, c) for i in range(3) for c in ("b", "king"))


@pytest.mark.parametrize(("a", "b"), [(None, None), (None, TaskOutcome("b", 1.0))])
def test_a_final_still_between_two_who_can_score_foresees_nothing(a, b):
    record, plan, matches = _final(a, b)
    assert foreseen_round(record, plan, matches, KNOCKOUT) is None


def test_nothing_is_foreseen_when_both_finalists_failed_or_past_a_boss_round():
    record, plan, matches = _final(outcome("a", None), outcome("b", None))
    assert foreseen_round(record, plan, matches, KNOCKOUT) is None  # the champion keeps the title: no round
    final = PlayedRound(plan, tuple(m.assuming_success() for m in _final(outcome("a", 1.0), outcome("b", None))[2]))
    with_final = replace(record, rounds=(final,))
    boss = next_step(with_final, KNOCKOUT)
    assert isinstance(boss, PlayRound) and boss.plan.stage == Stage.BOSS
    (match,) = boss.plan.matches
    unfinished = OpenMatch(match, (Direction.LOWER,) * 3, ((None, None),) * 3)
    assert foreseen_round(with_final, boss.plan, (unfinished,), KNOCKOUT) is None


def test_a_plan_that_is_not_the_records_next_round_is_refused():
    record, plan, matches = _final(outcome("a", None), None)
    wrong = replace(plan, index=4)
    with pytest.raises(ValueError, match="differs from the plan"):
        foreseen_round(record, wrong, matches, KNOCKOUT)


def test_the_defenders_boss_runs_are_named_while_a_boss_round_is_still_to_come():
    record, plan, _matches = _final(None, None)
    assert defender_boss_places(record, plan) == tuple(("boss", i, "king") for i in range(3))
    assert defender_boss_places(replace(record, champion=None), plan) == ()  # nobody defends
    entered = TournamentRecord(("a", "king"), 7, 3, "king")  # the champion plays the bracket: it may win it
    step = next_step(entered, KNOCKOUT)
    assert isinstance(step, PlayRound) and defender_boss_places(entered, step.plan) == ()
    final = PlayedRound(plan, tuple(m.assuming_success() for m in _final(outcome("a", 1.0), outcome("b", None))[2]))
    with_final = replace(record, rounds=(final,))
    boss = next_step(with_final, KNOCKOUT)
    assert isinstance(boss, PlayRound) and boss.plan.stage == Stage.BOSS
    assert defender_boss_places(with_final, boss.plan) == ()  # the boss round is open: its runs are claimed
