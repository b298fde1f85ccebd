from dataclasses import replace

import pytest

from trainarena.contract import Direction
from trainarena.engine import (
    Finished,
    LatentSkillPlayer,
    PlayRound,
    Stage,
    TournamentRecord,
    group_sizes,
    next_step,
    play_out,
    replay,
    tasks_at_most,
)
from trainarena.engine.bracket import plan_knockout_round
from trainarena.settings import TournamentRules

RULES = TournamentRules()


def _names(n):
    return tuple(f"p{i:03d}" for i in range(n))


def _player(names, seed=0, **kwargs):
    truth = {n: 1.0 + 0.01 * i for i, n in enumerate(names)}
    return LatentSkillPlayer(truth, 0.02, seed, **kwargs)


@pytest.mark.parametrize(
    ("remaining", "sizes"),
    [(16, (8, 8)), (17, (9, 8)), (18, (6, 6, 6)), (24, (8, 8, 8)), (25, (7, 6, 6, 6)), (37, (8, 8, 7, 7, 7)), (100, (8,) * 9 + (7,) * 4)],
)
def test_group_sizes_are_balanced_and_keep_the_minimum(remaining, sizes):
    assert group_sizes(remaining, RULES) == sizes
    assert sum(sizes) == remaining


def test_group_round_gives_every_member_the_same_tasks_and_top_k_advance():
    record = TournamentRecord(_names(37), seed=5, boss_tasks=3)
    step = next_step(record, RULES)
    assert isinstance(step, PlayRound) and step.plan.stage == Stage.GROUP
    members = [c for m in step.plan.matches for c in m.competitors]
    assert sorted(members) == sorted(record.entrants)
    assert all(m.tasks == RULES.group_tasks and m.advance == RULES.group_advance for m in step.plan.matches)
    assert len({m.match_id for m in step.plan.matches}) == len(step.plan.matches)
    played = _player(record.entrants)(step.plan)
    after = replay(replace(record, rounds=(played,)), RULES)
    assert len(after.rounds[0].advanced) == RULES.group_advance * len(step.plan.matches)


def test_group_draw_depends_on_seed_only():
    a = next_step(TournamentRecord(_names(40), seed=1, boss_tasks=3), RULES)
    b = next_step(TournamentRecord(tuple(reversed(_names(40))), seed=1, boss_tasks=3), RULES)
    c = next_step(TournamentRecord(_names(40), seed=2, boss_tasks=3), RULES)
    assert a == b  # entrant order does not matter
    assert a != c


def test_knockout_pairs_everyone_once_and_gives_an_odd_count_one_bye():
    plan = plan_knockout_round(_names(7), {}, seed=3, index=0, rules=RULES)
    assert plan.stage == Stage.KNOCKOUT and len(plan.byes) == 1 and len(plan.matches) == 3
    seen = [c for m in plan.matches for c in m.competitors] + list(plan.byes)
    assert sorted(seen) == list(_names(7))
    assert all(len(m.competitors) == 2 and m.advance == 1 for m in plan.matches)


def test_bye_goes_to_someone_without_a_bye_yet():
    names = _names(5)
    had_bye = {n: 1 for n in names[:4]}
    for seed in range(10):
        assert plan_knockout_round(names, had_bye, seed=seed, index=2, rules=RULES).byes == (names[4],)


def test_no_champion_crowns_the_last_challenger_without_a_boss_round():
    record = TournamentRecord(_names(5), seed=0, boss_tasks=3)
    result = play_out(record, RULES, _player(record.entrants))
    assert result.boss is None
    assert isinstance(result.next, Finished) and result.next.crowned
    assert result.next.champion == result.next.challenger == result.next.standings[0]
    assert all(p.plan.stage == Stage.KNOCKOUT for p in result.record.rounds)


def test_a_single_entrant_without_a_score_is_not_crowned_unless_the_rules_of_its_day_did():
    record = TournamentRecord(("solo",), seed=0, boss_tasks=3)
    assert next_step(record, RULES) == Finished(
        None, False, None, (), "no defending champion, and the last challenger, solo, has no valid score (it entered alone): no winner")
    # Tournaments played before the rule existed replay as they were decided.
    old = TournamentRules.as_recorded(RULES.model_dump(exclude={"crown_unscored"}))
    assert old.crown_unscored
    assert next_step(record, old) == Finished("solo", True, "solo", ("solo",), "no defending champion: the last challenger is crowned")


def test_the_bye_of_a_round_where_every_run_failed_is_no_winner():
    """Three entrants: a pair whose runs both fail and a bye. The bye is the last one left, without a
    score: crowning it would sell a method that never trained once."""
    record = TournamentRecord(("a", "b", "c"), seed=0, boss_tasks=3)
    nobody_scores = LatentSkillPlayer({"a": 1.0, "b": 1.0, "c": 1.0}, 0.0, 0, always_fail=frozenset({"a", "b", "c"}))
    result = play_out(record, RULES, nobody_scores)
    [played] = result.record.rounds
    [bye] = played.plan.byes
    assert result.next == Finished(None, False, None, (), f"no defending champion, and the last challenger, {bye}, has no "
                                   "valid score (it advanced on byes): no winner")
    # With a champion defending, the bye meets it in the boss round, fails, and the champion retains.
    defended = play_out(TournamentRecord(("a", "b", "c"), seed=0, boss_tasks=3, champion="king"), RULES,
                        LatentSkillPlayer({"a": 1.0, "b": 1.0, "c": 1.0, "king": 1.0}, 0.0, 0, always_fail=frozenset({"a", "b", "c"})))
    assert defended.next.champion == "king" and not defended.next.crowned


def test_boss_round_is_challenger_against_champion_on_fresh_tasks():
    record = TournamentRecord(_names(3), seed=0, boss_tasks=5, champion="king")
    player = LatentSkillPlayer({**{n: 1.0 for n in record.entrants}, "king": 2.0}, 0.0, 0)
    result = play_out(record, RULES, player)
    boss_plan = result.record.rounds[-1].plan
    assert boss_plan.stage == Stage.BOSS and boss_plan.matches[0].tasks == 5
    assert "king" in boss_plan.matches[0].competitors
    assert isinstance(result.next, Finished) and result.next.crowned and result.next.champion != "king"
    assert result.next.standings[:2] == (result.next.champion, "king")


def test_strong_champion_is_retained():
    record = TournamentRecord(_names(20), seed=0, boss_tasks=3, champion="king")
    player = LatentSkillPlayer({**{n: 1.0 for n in record.entrants}, "king": 0.5}, 0.01, 0)
    finished = play_out(record, RULES, player).next
    assert isinstance(finished, Finished) and finished.champion == "king" and not finished.crowned
    assert finished.challenger in record.entrants and finished.standings[:2] == ("king", finished.challenger)


def test_champion_who_entered_and_won_the_bracket_is_retained_without_a_boss_round():
    names = _names(4) + ("king",)
    player = LatentSkillPlayer({**{n: 1.0 for n in names}, "king": 0.1}, 0.0, 0)
    result = play_out(TournamentRecord(names, seed=0, boss_tasks=3, champion="king"), RULES, player)
    assert result.boss is None
    assert isinstance(result.next, Finished)
    assert (result.next.champion, result.next.crowned, result.next.challenger) == ("king", False, "king")


def test_nobody_surviving_retains_the_champion_or_ends_without_winner():
    names = _names(6)
    everyone_fails = _player(names, always_fail=frozenset(names))
    with_champion = play_out(TournamentRecord(names, 0, 3, champion="king"), RULES, everyone_fails).next
    assert isinstance(with_champion, Finished)
    assert (with_champion.champion, with_champion.crowned, with_champion.challenger) == ("king", False, None)
    assert with_champion.standings == ("king",)
    without = play_out(TournamentRecord(names, 0, 3), RULES, everyone_fails).next
    assert isinstance(without, Finished) and without.champion is None and without.standings == ()
    assert "no winner" in without.reason


def test_no_entrants():
    assert next_step(TournamentRecord((), 0, 3, champion="king"), RULES) == Finished("king", False, None, ("king",), "no entrants; king retains the title")
    finished = next_step(TournamentRecord((), 0, 3), RULES)
    assert isinstance(finished, Finished) and finished.champion is None


def test_replay_of_a_stored_record_gives_the_same_decisions():
    record = TournamentRecord(_names(40), seed=9, boss_tasks=3, champion="king")
    truth = {**{n: 1.0 + 0.01 * i for i, n in enumerate(record.entrants)}, "king": 1.0}
    driven = play_out(record, RULES, LatentSkillPlayer(truth, 0.05, 9))
    assert replay(driven.record, RULES) == driven
    # resuming half-way gives the same end
    half = replace(record, rounds=driven.record.rounds[:2])
    assert play_out(half, RULES, LatentSkillPlayer(truth, 0.05, 9)) == driven


def test_a_record_that_departs_from_the_rules_is_rejected():
    record = TournamentRecord(_names(20), seed=9, boss_tasks=3)
    driven = play_out(record, RULES, _player(record.entrants))
    other_seed = replace(driven.record, seed=10)
    with pytest.raises(ValueError, match="differs from the plan"):
        replay(other_seed, RULES)
    first = driven.record.rounds[0]
    with pytest.raises(ValueError, match="do not match the plan"):
        replay(replace(record, rounds=(replace(first, matches=first.matches[1:]),)), RULES)
    with pytest.raises(ValueError, match="after the tournament finished"):
        replay(replace(driven.record, rounds=driven.record.rounds + driven.record.rounds[-1:]), RULES)


def test_duplicate_entrants_are_rejected():
    with pytest.raises(ValueError, match="unique"):
        next_step(TournamentRecord(("a", "a"), 0, 3), RULES)


def test_higher_is_better_tournament_with_negative_scores_crowns_a_clearly_better_challenger():
    names = _names(30)
    truth = {**{n: 2.0 for n in names}, names[7]: 1.0, "king": 1.5}  # scores are -loss: negative
    player = LatentSkillPlayer(truth, 0.005, 4, direction=Direction.HIGHER)
    finished = play_out(TournamentRecord(names, 4, 3, champion="king"), RULES, player).next
    assert isinstance(finished, Finished) and finished.champion == names[7] and finished.crowned


def test_tasks_at_most_counts_every_round_and_boss_round_the_rules_allow():
    assert tasks_at_most(0, True, RULES, 3) == 0
    assert tasks_at_most(1, False, RULES, 3) == 0  # crowned without playing
    assert tasks_at_most(3, False, RULES, 3) == 2  # two knockout rounds (a bye in the first)
    assert tasks_at_most(3, True, RULES, 3) == 2 + 3 * RULES.boss_rounds_max  # every boss round the paired rule may add
    assert tasks_at_most(3, True, TournamentRules(boss_rule="majority"), 3) == 5  # the majority rule plays one
    # 20 entrants: one group round (3 groups), up to 6 advance, then at most 3 knockout rounds.
    assert tasks_at_most(20, False, RULES, 3) == RULES.group_tasks + 3 * RULES.knockout_tasks


def test_failures_can_make_a_bracket_longer_than_everyone_scoring_and_tasks_at_most_covers_it():
    """64 entrants: 8 groups of 8 leave 16, a second group round leaves 4, two knockout rounds: 4 rounds
    when everyone scores. If one first-round group has a single scorer, 15 are left: knockout rounds of
    15, 8, 4 and 2 follow, 5 rounds (a pool drawn for 4 ran out in its last round)."""
    names = _names(64)
    everyone = _player(names)

    def one_scorer_in_the_first_group(plan):
        played = everyone(plan)
        if plan.index != 0:
            return played
        first, *others = played.matches
        survivor = first.match.competitors[0]
        failed = tuple(tuple(o if o.competitor == survivor else replace(o, score=None, failure="failed") for o in task)
                       for task in first.tasks)
        return replace(played, matches=(replace(first, tasks=failed), *others))

    def tasks_played(play):
        result = play_out(TournamentRecord(names, 1, 3, None), RULES, play)
        assert isinstance(result.next, Finished)
        return sum(max(m.match.tasks for m in p.matches) for p in result.record.rounds)

    assert tasks_played(everyone) == 4
    assert tasks_played(one_scorer_in_the_first_group) == 5 == tasks_at_most(64, False, RULES, 3)
