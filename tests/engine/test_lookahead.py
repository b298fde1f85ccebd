"""Looking one round ahead (engine.lookahead): every run it calls certain is a run of the round the
tournament plays next, and every run of that round is one it calls possible, whatever the open
round's unfinished runs do (fail, or score anything: tied with a finished score, between two, beyond
them all)."""

import math
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from trainarena.contract import Direction
from trainarena.engine import (
    LatentSkillPlayer,
    Match,
    PlayedMatch,
    PlayedRound,
    PlayRound,
    RoundPlan,
    Stage,
    TaskOutcome,
    TournamentRecord,
    next_step,
    play_out,
)
from trainarena.engine.lookahead import Lookahead, NextRun, OpenMatch, look_ahead, round_runs
from trainarena.settings import TournamentRules

from .helpers import outcome

KNOCKOUT = TournamentRules()
GROUPS = TournamentRules(group_stage_min_entrants=8, group_size_min=3, group_size_max=5, group_advance=2, group_tasks=2)
CAP = 20_000  # completions examined at most in these tests
Place = tuple[str, int, str]  # (match id, task index, competitor) of the open round


def _open(played: PlayedRound, unfinished: set[Place]) -> tuple[OpenMatch, ...]:
    return tuple(
        OpenMatch(m.match, m.directions,
                  tuple(tuple(None if (m.match.match_id, i, o.competitor) in unfinished else o for o in task)
                        for i, task in enumerate(m.tasks)))
        for m in played.matches
    )


def _completed(played: PlayedRound, unfinished: set[Place], data: st.DataObject) -> PlayedRound:
    """``played`` with each unfinished run failing or scoring anew: often exactly a finished score of
    its task, or the float next to one, so ties and the narrowest gaps come up."""
    matches = []
    for m in played.matches:
        tasks = []
        for i, task in enumerate(m.tasks):
            finished = [o.score for o in task if (m.match.match_id, i, o.competitor) not in unfinished and o.score is not None]
            near = [math.nextafter(s, side) for s in finished for side in (-math.inf, math.inf)]
            score = st.one_of(st.none(), st.floats(-5, 5), *([st.sampled_from(finished + near)] if finished else []))
            tasks.append(tuple(outcome(o.competitor, data.draw(score)) if (m.match.match_id, i, o.competitor) in unfinished else o
                               for o in task))
        matches.append(replace(m, tasks=tuple(tasks)))
    return replace(played, matches=tuple(matches))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    entrants=st.integers(1, 30),
    seed=st.integers(0, 2**32),
    champion=st.sampled_from([None, "king", "p0"]),
    rules=st.sampled_from([KNOCKOUT, GROUPS]),
    fail_probability=st.sampled_from([0.0, 0.2, 0.6]),
    data=st.data(),
)
def test_certain_runs_are_played_next_and_possible_runs_cover_the_next_round_whatever_the_unfinished_runs_do(
        entrants, seed, champion, rules, fail_probability, data):
    names = tuple(f"p{i}" for i in range(entrants))
    truth = {n: 1.0 + (i % 7) / 10 for i, n in enumerate(names)} | {"king": 1.2}
    player = LatentSkillPlayer(truth, noise=0.1, seed=seed, direction=Direction.LOWER, fail_probability=fail_probability)
    record = TournamentRecord(names, seed, 3, champion)
    rounds = play_out(record, rules, player).record.rounds
    if not rounds:
        return
    index = data.draw(st.integers(0, len(rounds) - 1))
    before, played = replace(record, rounds=rounds[:index]), rounds[index]
    places = [(r.match_id, r.task_index, r.competitor) for r in round_runs(played.plan)]
    unfinished = set(data.draw(st.lists(st.sampled_from(places), max_size=min(4, len(places)), unique=True)))
    lookahead = look_ahead(before, played.plan, _open(played, unfinished), rules, CAP)
    if played.plan.stage == Stage.BOSS:
        assert lookahead is None
        return
    assert lookahead is not None  # four unfinished runs stay well within the cap
    if not unfinished:  # nothing left to guess: the round that follows is the one played next
        actual = next_step(replace(before, rounds=rounds[: index + 1]), rules)
        assert lookahead.rounds == (actual.plan if isinstance(actual, PlayRound) else None,)
    event(f"certain runs: {bool(lookahead.certain())}, rounds that can follow: {min(len(lookahead.rounds), 3)}")
    for _ in range(3):  # whatever the runs still training do
        completed = _completed(played, unfinished, data)
        step = next_step(replace(before, rounds=(*before.rounds, completed)), rules)
        actual = step.plan if isinstance(step, PlayRound) else None
        assert actual in lookahead.rounds
        succeeded = all(o.score is not None for m in completed.matches for i, task in enumerate(m.tasks) for o in task
                        if (m.match.match_id, i, o.competitor) in unfinished)
        assert actual in lookahead.if_all_succeed or not succeeded
        runs = set(round_runs(actual)) if actual is not None else set()
        assert set(lookahead.certain()) <= runs
        assert runs <= lookahead.possible()
        assert not set(lookahead.bets()) & set(lookahead.certain())


def _knockout(entrants: str, seed: int, scores: dict[str, float | None]) -> tuple[TournamentRecord, RoundPlan, tuple[OpenMatch, ...]]:
    """The first knockout round of ``entrants`` against a defending champion, each run finished with
    its score in ``scores`` (None: failed) or unfinished when absent."""
    record = TournamentRecord(tuple(entrants), seed, 3, "king")
    step = next_step(record, KNOCKOUT)
    assert isinstance(step, PlayRound) and step.plan.stage == Stage.KNOCKOUT
    matches = tuple(OpenMatch(m, (Direction.LOWER,), (tuple(outcome(c, scores[c]) if c in scores else None for c in m.competitors),))
                    for m in step.plan.matches)
    return record, step.plan, matches


def test_a_pair_still_open_leaves_the_rest_of_the_next_round_certain() -> None:
    # Seed 0 pairs b with a; whichever of them goes on sorts first, so the draw of the next round
    # pairs everyone else alike: only the runs of a or b are in doubt.
    record, plan, matches = _knockout("abcdefgh", 0, {"a": 1.0, "c": 1.0, "d": 2.0, "e": 2.0, "f": 1.0, "g": 1.0, "h": 2.0})
    assert ("b", "a") in [m.competitors for m in plan.matches]
    lookahead = look_ahead(record, plan, matches, KNOCKOUT, CAP)
    assert lookahead is not None and len(lookahead.rounds) == 2  # a goes on, or b does
    (with_a,) = [p for p in lookahead.rounds if p is not None and "a" in {c for m in p.matches for c in m.competitors}]
    certain = lookahead.certain()
    assert certain == tuple(r for r in round_runs(with_a) if r.competitor != "a")
    assert len(certain) == 3
    assert lookahead.bets() == tuple(r for p in lookahead.rounds if p is not None for r in round_runs(p) if r.competitor in "ab")


def test_a_finalist_whose_opponent_failed_is_a_bet_on_the_boss_round_not_a_certainty() -> None:
    record, plan, matches = _knockout("ab", 7, {"a": None})
    lookahead = look_ahead(record, plan, matches, KNOCKOUT, CAP)
    boss = RoundPlan(1, Stage.BOSS, (Match("boss", ("b", "king"), 3, 1),))
    assert lookahead is not None and set(lookahead.rounds) == {boss, None} and lookahead.if_all_succeed == (boss,)
    assert lookahead.certain() == ()  # b may fail too, and the champion keeps the title
    assert lookahead.bets() == round_runs(boss) == tuple(NextRun(1, Stage.BOSS, "boss", i, c) for i in range(3) for c in ("b", "king"))


def test_the_first_bets_are_on_the_runs_still_training_succeeding() -> None:
    # The demo's seed-2 shape: one pair decided, the other's only hope still training. If it succeeds
    # a final follows, if it fails the boss round: the bet is the final, then the boss round.
    record, plan, matches = _knockout("abcd", 1, {})
    (first, second), (hope, failed) = (m.competitors for m in plan.matches)
    record, plan, matches = _knockout("abcd", 1, {first: 1.0, second: 2.0, failed: None})
    lookahead = look_ahead(record, plan, matches, KNOCKOUT, CAP)
    assert lookahead is not None and lookahead.certain() == ()
    boss = RoundPlan(1, Stage.BOSS, (Match("boss", (first, "king"), 3, 1),))
    (final,) = lookahead.if_all_succeed
    assert set(lookahead.rounds) == {final, boss} and {c for m in final.matches for c in m.competitors} == {first, hope}
    assert lookahead.bets() == round_runs(final) + round_runs(boss)


def test_a_settled_round_is_certain_whole() -> None:
    record, plan, matches = _knockout("ab", 7, {"a": None})
    done = look_ahead(record, plan, _knockout("ab", 7, {"a": None, "b": 1.5})[2], KNOCKOUT, CAP)
    boss = RoundPlan(1, Stage.BOSS, (Match("boss", ("b", "king"), 3, 1),))
    assert done == Lookahead((boss,), (boss,)) and done.certain() == round_runs(boss) and done.bets() == ()
    assert look_ahead(record, plan, _knockout("ab", 7, {"a": None, "b": None})[2], KNOCKOUT, CAP) == Lookahead((None,), (None,))


def test_ties_with_finished_scores_are_among_the_completions() -> None:
    # A group of three advancing two, one task, a at 1.0 and b at 2.0 (lower is better), c still
    # training. A tie with b leaves b and c level on points, which the seeded draw decides; every
    # score c can get gives a round the lookahead found.
    rules = TournamentRules(group_stage_min_entrants=3, group_size_min=3, group_size_max=3, group_advance=2, group_tasks=1)
    record = TournamentRecord(("a", "b", "c"), 5, 3, None)
    step = next_step(record, rules)
    assert isinstance(step, PlayRound)
    (match,) = step.plan.matches
    scores = {"a": 1.0, "b": 2.0}
    open_match = OpenMatch(match, (Direction.LOWER,), (tuple(outcome(c, scores[c]) if c in scores else None for c in match.competitors),))
    lookahead = look_ahead(record, step.plan, (open_match,), rules, CAP)
    assert lookahead is not None
    for c_score in (0.5, 1.0, 1.5, 2.0, 3.0, None):
        all_scores = scores | {"c": c_score}
        played = PlayedMatch(match, (Direction.LOWER,), (tuple(outcome(c, all_scores[c]) for c in match.competitors),))
        actual = next_step(replace(record, rounds=(PlayedRound(step.plan, (played,)),)), rules)
        assert (actual.plan if isinstance(actual, PlayRound) else None) in lookahead.rounds


def test_too_many_completions_give_up() -> None:
    record, plan, matches = _knockout("abcdefgh", 3, {})
    assert look_ahead(record, plan, matches, KNOCKOUT, CAP) is not None  # 3 completions per pair: 81 rounds
    assert look_ahead(record, plan, matches, KNOCKOUT, 80) is None
    assert look_ahead(record, plan, matches, KNOCKOUT, 2) is None  # past the cap within one pair already


def test_nothing_is_foreseen_past_an_open_boss_round() -> None:
    record = TournamentRecord(("a",), 7, 3, "king")
    boss = next_step(record, KNOCKOUT)
    assert isinstance(boss, PlayRound) and boss.plan.stage == Stage.BOSS
    (match,) = boss.plan.matches
    unfinished = OpenMatch(match, (Direction.LOWER,) * 3, ((TaskOutcome("a", 1.0), None),) * 3)
    assert look_ahead(record, boss.plan, (unfinished,), KNOCKOUT, CAP) is None


def test_a_plan_that_is_not_the_records_next_round_is_refused() -> None:
    record, plan, matches = _knockout("ab", 7, {"a": None})
    with pytest.raises(ValueError, match="differs from the plan"):
        look_ahead(record, replace(plan, index=4), matches, KNOCKOUT, CAP)
