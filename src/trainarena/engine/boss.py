"""The boss round: the final challenger against the defending champion (docs/rules.md, 'Boss round').

Margin: on a boss task the challenger's *lead* is its score minus the champion's in the task's
direction (``champion - challenger`` when lower is better, ``challenger - champion`` when higher is
better). The challenger takes the task only when

    lead >= required_lead = max(boss_margin * |champion score|, boss_margin_floor)

Using ``|champion score|`` keeps the rule right for zero and negative scores, where multiplying by
1.05 (as G.O.D did) would flip the sign of the demand. A champion run that failed hands the task to
a challenger that succeeded; a challenger that failed never takes the task. Crowned only by taking a
strict majority of the boss tasks.

Two rules (``boss_rule``): ``majority``, the margin above on a strict majority of one boss round's
tasks; and ``paired`` (the default), a sequential test on the relative leads of every boss task
played so far (``engine/paired.py``), which crowns, retains, or asks for another boss round while the
decision is unclear, up to ``boss_rounds_max`` rounds. Failed runs under the paired rule: a
challenger that failed a task the champion completed is not crowned; a champion that failed a strict
majority of the tasks played (the challenger completing them) loses the title; a challenger that
completed no boss task is not crowned; otherwise a task only the champion failed counts as a
relative lead of +1, and a task both failed is left out of the test.

Optional gate of the majority rule (``bootstrap_gate``): the challenger must also beat the champion in
a paired bootstrap over the hidden examples: each resample's lead is the lead between the two runs'
resampled scores (``engine.scores``: the per-example values are shares whose sum is the score), and
the share of resampled leads strictly above 0 must reach ``bootstrap_confidence``. Identical
per-example values give a fraction of 0. Missing or mismatched per-example values mean the gate is
not satisfied.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import partial

import numpy as np
import numpy.typing as npt

from trainarena.contract import Direction
from trainarena.engine.model import BossDecision, BossTaskResult, PlayedMatch, TaskOutcome
from trainarena.engine.paired import Verdict, paired_bounds, relative_lead
from trainarena.engine.ranking import better_first_key, is_failed
from trainarena.engine.scores import resample_counts, resampled_scores
from trainarena.settings import TournamentRules
from trainarena.wording import counted

# One boss task as the rules see it: (challenger's outcome, champion's, direction, lead unit).
_TaskPair = tuple[TaskOutcome, TaskOutcome, Direction, float | None]


def boss_lead(challenger_score: float, champion_score: float, direction: Direction) -> float:
    """The challenger's lead in the task's direction: positive means the challenger is better."""
    return better_first_key(champion_score, direction) - better_first_key(challenger_score, direction)


def required_lead(champion_score: float, rules: TournamentRules) -> float:
    return max(rules.boss_margin * abs(champion_score), rules.boss_margin_floor)


def bootstrap_win_fraction(leads: npt.ArrayLike, resamples: int, seed: int) -> npt.NDArray[np.float64]:
    """Paired bootstrap over examples, vectorised over leading axes.

    ``leads[..., k]`` is the challenger's lead on example k: the difference of the two runs' shares
    of the score (positive = challenger better), so ``sum(leads)`` is the task's lead. Returns, per
    row, the share of ``resamples`` resampled leads (:func:`resampled_scores` of the leads: the lead
    between the two resampled scores) that are strictly above 0."""
    array = np.asarray(leads, dtype=np.float64)
    examples = array.shape[-1]
    if examples == 0:
        raise ValueError("bootstrap needs at least one per-example score")
    counts = resample_counts(examples, resamples, seed)
    resampled = resampled_scores(array.reshape(-1, examples), counts)  # (rows, resamples)
    return (resampled > 0).mean(axis=1).reshape(array.shape[:-1])


def _per_example_leads(challenger: TaskOutcome, champion: TaskOutcome, direction: Direction) -> npt.NDArray[np.float64] | None:
    ours, theirs = np.asarray(challenger.per_example, float), np.asarray(champion.per_example, float)
    if ours.size == 0 or ours.shape != theirs.shape or not (np.isfinite(ours).all() and np.isfinite(theirs).all()):
        return None
    return theirs - ours if direction == Direction.LOWER else ours - theirs


def _failed_task(index: int, challenger: TaskOutcome, champion: TaskOutcome) -> BossTaskResult:
    challenger_ok, champion_ok = not is_failed(challenger), not is_failed(champion)
    taken = challenger_ok and not champion_ok
    if taken:
        reason = "the champion's run failed and the challenger's succeeded"
    elif champion_ok:
        reason = "the challenger's run failed"
    else:
        reason = "both runs failed: nobody takes the task"
    return BossTaskResult(
        task_index=index,
        challenger_score=challenger.score if challenger_ok else None,
        champion_score=champion.score if champion_ok else None,
        lead=None,
        required_lead=None,
        margin_met=taken,
        bootstrap_win_fraction=None,
        bootstrap_met=None,
        taken=taken,
        reason=reason,
    )


def boss_task(index: int, challenger: TaskOutcome, champion: TaskOutcome, direction: Direction, rules: TournamentRules) -> BossTaskResult:
    """Decide one boss task."""
    if is_failed(challenger) or is_failed(champion):
        return _failed_task(index, challenger, champion)
    assert challenger.score is not None and champion.score is not None  # narrowed by is_failed
    lead = boss_lead(challenger.score, champion.score, direction)
    needed = required_lead(champion.score, rules)
    margin_met = lead >= needed
    fraction: float | None = None
    gate: bool | None = None
    if rules.bootstrap_gate and margin_met:
        leads = _per_example_leads(challenger, champion, direction)
        if leads is not None:
            fraction = float(bootstrap_win_fraction(leads, rules.bootstrap_resamples, rules.bootstrap_seed))
        gate = fraction is not None and fraction >= rules.bootstrap_confidence
    taken = margin_met and gate is not False
    if not margin_met:
        reason = f"lead {lead:.6g} below the required {needed:.6g}"
    elif gate is False:
        reason = "margin met but the bootstrap gate failed" + (" (missing per-example scores)" if fraction is None else "")
    else:
        reason = f"lead {lead:.6g} meets the required {needed:.6g}"
    return BossTaskResult(index, challenger.score, champion.score, lead, needed, margin_met, fraction, gate, taken, reason)


def _outcome_of(outcomes: tuple[TaskOutcome, ...], competitor: str) -> TaskOutcome:
    found = [o for o in outcomes if o.competitor == competitor]
    if len(found) > 1:
        raise ValueError(f"two outcomes for {competitor!r} on one boss task")
    return found[0] if found else TaskOutcome(competitor, None, "no outcome recorded")


def _check_boss_match(played: PlayedMatch, challenger: str, champion: str) -> None:
    if {challenger, champion} != set(played.match.competitors) or challenger == champion:
        raise ValueError(f"boss match {played.match.competitors} must be exactly challenger {challenger!r} and champion {champion!r}")
    if len(played.tasks) != played.match.tasks or len(played.directions) != played.match.tasks:
        raise ValueError(f"boss round planned {played.match.tasks} tasks, got {len(played.tasks)}")


def _task_pairs(rounds: Sequence[PlayedMatch], challenger: str, champion: str) -> list[_TaskPair]:
    """(challenger's outcome, champion's, direction, lead unit) of every boss task, in play order."""
    pairs = []
    for played in rounds:
        _check_boss_match(played, challenger, champion)
        for index, (direction, outcomes) in enumerate(zip(played.directions, played.tasks, strict=True)):
            pairs.append((_outcome_of(outcomes, challenger), _outcome_of(outcomes, champion), direction, played.lead_unit(index)))
    return pairs


def boss_rounds_at_most(rules: TournamentRules) -> int:
    """The most boss rounds one tournament can play under ``rules`` (what a task pool must cover)."""
    return rules.boss_rounds_max if rules.boss_rule == "paired" else 1


def boss_decision(played: PlayedMatch, challenger: str, champion: str, rules: TournamentRules) -> BossDecision:
    """Decide a boss round of one match; a missing outcome counts as a failed run."""
    return decide_boss((played,), challenger, champion, rules)


def decide_boss(rounds: Sequence[PlayedMatch], challenger: str, champion: str, rules: TournamentRules) -> BossDecision:
    """Decide the boss rounds played so far, by ``rules.boss_rule``."""
    if not rounds:
        raise ValueError("no boss round to decide")
    pairs = _task_pairs(rounds, challenger, champion)
    if rules.boss_rule == "paired":
        return _paired_decision(pairs, len(rounds), challenger, champion, rules)
    if len(rounds) != 1:
        raise ValueError(f"the majority rule plays one boss round, got {len(rounds)}")
    results = tuple(boss_task(i, ours, theirs, direction, rules) for i, (ours, theirs, direction, _unit) in enumerate(pairs))
    taken = sum(r.taken for r in results)
    needed = len(results) // 2 + 1
    verb = "took" if taken >= needed else "only took"
    reason = f"challenger {challenger} {verb} {taken} of {len(results)} boss tasks (needed {needed})"
    return BossDecision(challenger, champion, results, taken, needed, crowned=taken >= needed, reason=reason)


def _paired_task(index: int, challenger: TaskOutcome, champion: TaskOutcome, direction: Direction, unit: float | None) -> BossTaskResult:
    """One task of the paired rule: its relative lead (over the task's lead unit, if it has one); +1
    where only the champion failed, -1 where only the challenger did, None (left out of the test)
    where both did."""
    if is_failed(challenger) or is_failed(champion):
        failed = _failed_task(index, challenger, champion)
        value = None if is_failed(challenger) and is_failed(champion) else (1.0 if failed.taken else -1.0)
        return replace(failed, relative_lead=value)
    assert challenger.score is not None and champion.score is not None  # narrowed by is_failed
    relative = float(relative_lead(challenger.score, champion.score, direction, unit))
    lead = boss_lead(challenger.score, champion.score, direction)
    reason = f"relative lead {relative:+.2%}"
    return BossTaskResult(index, challenger.score, champion.score, lead, None, relative > 0, None, None, relative > 0, reason, relative)


def _paired_decision(
    pairs: list[_TaskPair], played_rounds: int, challenger: str, champion: str, rules: TournamentRules
) -> BossDecision:
    results = tuple(_paired_task(i, *pair) for i, pair in enumerate(pairs))
    taken = sum(r.taken for r in results)
    needed = len(results) // 2 + 1
    outcome = partial(BossDecision, challenger, champion, results, taken, needed, rule="paired")
    challenger_failed = [r.task_index + 1 for r in results if r.challenger_score is None and r.champion_score is not None]
    if challenger_failed:
        return outcome(False, reason=f"challenger {challenger} failed boss task {challenger_failed[0]}, which the champion completed")
    champion_failed = sum(r.champion_score is None and r.challenger_score is not None for r in results)
    if champion_failed >= needed:
        return outcome(True, reason=f"champion {champion} failed {champion_failed} of {len(results)} boss tasks, which challenger {challenger} completed")
    if all(r.challenger_score is None for r in results):
        return outcome(False, reason=f"challenger {challenger} completed none of {len(results)} boss tasks")
    leads = [r.relative_lead for r in results if r.relative_lead is not None]  # tasks both failed are left out
    test = paired_bounds(leads, rules)
    if test is None:
        verdict, said = Verdict.UNCLEAR, f"{len(leads)} relative lead is too few to test"
        numbers: dict[str, float] = {}
    else:
        verdict = test.verdict
        numbers = {"mean_lead": test.mean, "lower_bound": test.lower, "upper_bound": test.upper}
        said = (f"mean relative lead {test.mean:+.2%} over {len(leads)} boss tasks, bounds "
                f"[{test.lower:+.2%}, {test.upper:+.2%}]")
    if verdict == Verdict.CROWN:
        return outcome(True, reason=f"{said}: the lower bound reaches {rules.boss_min_lead:.1%}", **numbers)
    if verdict == Verdict.RETAIN:
        return outcome(False, reason=f"{said}: the upper bound is below {rules.boss_futility_lead:.1%}", **numbers)
    if played_rounds >= rules.boss_rounds_max:
        return outcome(False, reason=f"{said}: still unclear after {counted(played_rounds, 'boss round')}", **numbers)
    return outcome(False, decided=False, reason=f"{said}: unclear, another boss round", **numbers)
