"""Tournament structure: group stage, knockout, boss round, and how it ends (docs/rules.md).

``next_step`` replays a record from its entrants and seed, checks that every stored round is the
round the rules would have planned, and returns the next decision. The boss round may be several
rounds of the record (stage ``boss``, matches ``boss``, ``boss-2``...): the paired boss rule asks for
another while its decision is unclear. ``play_out`` drives a whole
tournament with a pure ``play`` function (the simulator and the tests use it); it folds rounds in one
at a time, so a 10,000-entrant tournament is decided in linear work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from trainarena.engine.boss import boss_rounds_at_most, decide_boss
from trainarena.engine.model import (
    BossDecision,
    Finished,
    Match,
    MatchDecision,
    PlayedMatch,
    PlayedRound,
    PlayRound,
    RoundPlan,
    Stage,
    TournamentRecord,
)
from trainarena.engine.ranking import decide_match, is_failed
from trainarena.engine.seeding import seeded_order
from trainarena.settings import TournamentRules


@dataclass(frozen=True)
class RoundDecision:
    """A played group or knockout round and what came of it."""

    plan: RoundPlan
    decisions: tuple[MatchDecision, ...]
    advanced: tuple[str, ...]  # match advancers in match order, then byes


@dataclass(frozen=True)
class Replay:
    """Everything the rules decide from a record: each round's decisions, the boss round, what is next."""

    record: TournamentRecord
    rounds: tuple[RoundDecision, ...]
    boss: BossDecision | None
    next: PlayRound | Finished


@dataclass
class _State:
    """Mutable fold over played rounds (private; never leaves this module)."""

    alive: tuple[str, ...]
    byes: dict[str, int] = field(default_factory=dict)
    scored: set[str] = field(default_factory=set)  # produced at least one valid score
    eliminated: list[tuple[str, ...]] = field(default_factory=list)  # per round, best first
    rounds: list[RoundDecision] = field(default_factory=list)
    boss_played: list[PlayedMatch] = field(default_factory=list)  # every boss round so far
    boss: BossDecision | None = None  # the decision over them (undecided: another boss round follows)


def group_sizes(remaining: int, rules: TournamentRules) -> tuple[int, ...]:
    """Balanced group sizes: the fewest groups that keep every group within [min, max]; when no count
    fits (17 with 6..8), the groups keep the minimum, which is what guarantees each group eliminates
    someone, and go over the maximum: 17 -> (9, 8)."""
    groups, base, extra = _group_split(remaining, rules)
    return tuple(base + 1 if i < extra else base for i in range(groups))


def _group_split(remaining: int, rules: TournamentRules) -> tuple[int, int, int]:
    """(groups, base size, how many groups are one larger): group_sizes without listing them."""
    groups = -(-remaining // rules.group_size_max)
    if remaining // groups < rules.group_size_min:
        groups = max(1, remaining // rules.group_size_min)
    return groups, *divmod(remaining, groups)


def plan_group_round(alive: tuple[str, ...], seed: int, index: int, rules: TournamentRules) -> RoundPlan:
    order = seeded_order(sorted(alive), seed, "groups", index)
    matches, start = [], 0
    for number, size in enumerate(group_sizes(len(order), rules), start=1):
        members = order[start : start + size]
        start += size
        matches.append(Match(f"r{index + 1}-g{number:03d}", members, rules.group_tasks, rules.group_advance))
    return RoundPlan(index, Stage.GROUP, tuple(matches))


def plan_knockout_round(alive: tuple[str, ...], byes: dict[str, int], seed: int, index: int, rules: TournamentRules) -> RoundPlan:
    """Pairs in seeded-draw order. With an odd count, the bye goes to the first in the draw among
    those with the fewest byes so far (nobody gets a second bye while another has none)."""
    order = list(seeded_order(sorted(alive), seed, "knockout", index))
    bye: tuple[str, ...] = ()
    if len(order) % 2:
        fewest = min(byes.get(c, 0) for c in order)
        lucky = next(c for c in order if byes.get(c, 0) == fewest)
        order.remove(lucky)
        bye = (lucky,)
    matches = tuple(
        Match(f"r{index + 1}-k{number:03d}", (order[2 * number - 2], order[2 * number - 1]), rules.knockout_tasks, 1)
        for number in range(1, len(order) // 2 + 1)
    )
    return RoundPlan(index, Stage.KNOCKOUT, matches, bye)


def _standings(state: _State, first: tuple[str | None, ...]) -> tuple[str, ...]:
    """``first`` in order (None skipped), then eliminated competitors from the last round back, each
    round in place order; only competitors who produced at least one valid score are placed."""
    placed: dict[str, None] = {}
    for name in first:
        if name is not None:
            placed.setdefault(name)
    for round_out in reversed(state.eliminated):
        for name in round_out:
            if name in state.scored:
                placed.setdefault(name)
    return tuple(placed)


def _finish_after_boss(state: _State, boss: BossDecision) -> Finished:
    winner, loser = (boss.challenger, boss.champion) if boss.crowned else (boss.champion, boss.challenger)
    loser_placed = loser if loser in state.scored else None
    return Finished(winner, boss.crowned, boss.challenger, _standings(state, (winner, loser_placed)), boss.reason)


def boss_match_id(boss_round: int) -> str:
    """``boss`` for the first boss round, ``boss-2``, ``boss-3``... for those the paired rule adds."""
    return "boss" if boss_round == 0 else f"boss-{boss_round + 1}"


def _next(state: _State, record: TournamentRecord, rules: TournamentRules) -> PlayRound | Finished:
    defender = record.champion
    index = len(state.rounds) + len(state.boss_played)
    if state.boss is not None:
        if state.boss.decided:
            return _finish_after_boss(state, state.boss)
        again = Match(boss_match_id(len(state.boss_played)), (state.boss.challenger, state.boss.champion), record.boss_tasks, 1)
        return PlayRound(RoundPlan(index, Stage.BOSS, (again,)))
    if not state.alive:
        reason = "nobody produced a valid score in the last round" if state.rounds else "no entrants"
        if defender is None:
            return Finished(None, False, None, _standings(state, ()), reason + "; no champion to retain: no winner")
        return Finished(defender, False, None, _standings(state, (defender,)), reason + f"; {defender} retains the title")
    if len(state.alive) == 1:
        challenger = state.alive[0]
        if defender is None:
            if challenger in state.scored or rules.crown_unscored:
                return Finished(challenger, True, challenger, _standings(state, (challenger,)),
                                "no defending champion: the last challenger is crowned")
            how = "advanced on byes" if state.rounds else "entered alone"
            return Finished(None, False, None, _standings(state, ()), f"no defending champion, and the last challenger, "
                            f"{challenger}, has no valid score (it {how}): no winner")
        if challenger == defender:
            return Finished(defender, False, challenger, _standings(state, (defender,)), "the champion entered and won the bracket: retained")
        boss = Match(boss_match_id(0), (challenger, defender), record.boss_tasks, 1)
        return PlayRound(RoundPlan(index, Stage.BOSS, (boss,)))
    if len(state.alive) >= rules.group_stage_min_entrants:
        return PlayRound(plan_group_round(state.alive, record.seed, index, rules))
    return PlayRound(plan_knockout_round(state.alive, state.byes, record.seed, index, rules))


def _apply(state: _State, played: PlayedRound, record: TournamentRecord, rules: TournamentRules) -> None:
    plan = played.plan
    by_id = {m.match.match_id: m for m in played.matches}
    if len(by_id) != len(plan.matches) or any(by_id.get(m.match_id) is None or by_id[m.match_id].match != m for m in plan.matches):
        raise ValueError(f"round {plan.index}: played matches do not match the plan")
    for played_match in played.matches:
        for outcomes in played_match.tasks:
            state.scored.update(o.competitor for o in outcomes if not is_failed(o))
    if plan.stage == Stage.BOSS:
        match = plan.matches[0]
        state.boss_played.append(by_id[match.match_id])
        state.boss = decide_boss(state.boss_played, *match.competitors, rules)
        return
    decisions = tuple(decide_match(by_id[m.match_id], rules, record.seed) for m in plan.matches)
    advanced = tuple(c for d in decisions for c in d.advancers) + plan.byes
    for name in plan.byes:
        state.byes[name] = state.byes.get(name, 0) + 1
    # Eliminated this round: by place within their match, then by match order (itself a seeded draw).
    survivors = set(advanced)
    places = [(place, n, c) for n, d in enumerate(decisions) for place, c in enumerate(d.ranking) if c not in survivors]
    state.eliminated.append(tuple(c for _, _, c in sorted(places)))
    state.rounds.append(RoundDecision(plan, decisions, advanced))
    state.alive = advanced


def _start(record: TournamentRecord) -> _State:
    if len(set(record.entrants)) != len(record.entrants):
        raise ValueError("entrants must be unique")
    if record.boss_tasks < 1:
        raise ValueError(f"boss_tasks must be at least 1, got {record.boss_tasks}")
    return _State(alive=tuple(record.entrants))


def _check_and_apply(state: _State, played: PlayedRound, record: TournamentRecord, rules: TournamentRules) -> None:
    expected = _next(state, record, rules)
    if isinstance(expected, Finished):
        raise ValueError(f"round {played.plan.index} was played after the tournament finished")
    if played.plan != expected.plan:
        raise ValueError(f"round {played.plan.index} differs from the plan the rules give for this record")
    _apply(state, played, record, rules)


def _replay(state: _State, record: TournamentRecord, rules: TournamentRules) -> Replay:
    return Replay(record, tuple(state.rounds), state.boss, _next(state, record, rules))


def replay(record: TournamentRecord, rules: TournamentRules) -> Replay:
    """Re-decide every stored round (raising ValueError where the record departs from the rules)."""
    state = _start(record)
    for played in record.rounds:
        _check_and_apply(state, played, record, rules)
    return _replay(state, record, rules)


def next_step(record: TournamentRecord, rules: TournamentRules) -> PlayRound | Finished:
    return replay(record, rules).next


def tasks_at_most(entrants: int, defended: bool, rules: TournamentRules, boss_tasks: int) -> int:
    """The most tasks a bracket of ``entrants`` can play, whatever the outcomes: what a task pool must
    cover. A round's plan depends only on how many are alive, and a match advances anywhere from nobody
    (everyone failed) to its quota, so failures can make a bracket longer than the path where everyone
    scores (a knockout round of 5 can leave 3 instead of 2, a group round fewer than a knockout needs to
    end in as few rounds). The longest path over counts alive, then every boss round the rule allows."""
    boss = boss_rounds_at_most(rules) * boss_tasks if defended else 0
    longest = [0, boss]  # by how many are alive: nobody left ends it, one challenger meets the champion
    reach = [0, boss]  # the longest from any count up to this one (a round can leave 0..its most)
    for alive in range(2, entrants + 1):
        if alive >= rules.group_stage_min_entrants:
            groups, base, extra = _group_split(alive, rules)
            advance = rules.group_advance
            most_left = extra * min(base + 1, advance) + (groups - extra) * min(base, advance)
            tasks = rules.group_tasks
        else:
            most_left, tasks = alive - alive // 2, rules.knockout_tasks
        longest.append(tasks + reach[most_left])
        reach.append(max(reach[-1], longest[-1]))
    return longest[entrants]


def play_out(record: TournamentRecord, rules: TournamentRules, play: Callable[[RoundPlan], PlayedRound]) -> Replay:
    """Drive ``record`` to the end, asking ``play`` for the outcomes of each planned round."""
    state = _start(record)
    for played in record.rounds:
        _check_and_apply(state, played, record, rules)
    rounds = list(record.rounds)
    step = _next(state, record, rules)
    while isinstance(step, PlayRound):
        played = play(step.plan)
        if played.plan != step.plan:
            raise ValueError("play returned outcomes for a different plan")
        _apply(state, played, record, rules)
        rounds.append(played)
        step = _next(state, record, rules)
    return _replay(state, replace(record, rounds=tuple(rounds)), rules)
