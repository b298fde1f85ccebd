"""The boss round: the final challenger against the defending champion (docs/rules.md, 'Boss round').

Margin: on a boss task the challenger's *lead* is its score minus the champion's in the task's
direction (``champion - challenger`` when lower is better, ``challenger - champion`` when higher is
better). The challenger takes the task only when

    lead >= required_lead = max(boss_margin * |champion score|, boss_margin_floor)

Using ``|champion score|`` keeps the rule right for zero and negative scores, where multiplying by
1.05 (as G.O.D did) would flip the sign of the demand. A champion run that failed hands the task to
a challenger that succeeded; a challenger that failed never takes the task. Crowned only by taking a
strict majority of the boss tasks.

Optional gate (``bootstrap_gate``): the challenger must also beat the champion in a paired bootstrap
over the hidden examples: each resample's lead is the lead between the two runs' resampled scores
(``engine.scores``: the per-example values are shares whose sum is the score), and the share of
resampled leads strictly above 0 must reach ``bootstrap_confidence``. Identical per-example values
give a fraction of 0. Missing or mismatched per-example values mean the gate is not satisfied.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from trainarena.contract import Direction
from trainarena.engine.model import BossDecision, BossTaskResult, PlayedMatch, TaskOutcome
from trainarena.engine.ranking import better_first_key, is_failed
from trainarena.engine.scores import resample_counts, resampled_scores
from trainarena.settings import TournamentRules


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


def boss_decision(played: PlayedMatch, challenger: str, champion: str, rules: TournamentRules) -> BossDecision:
    """Decide the boss round; a missing outcome counts as a failed run."""
    if {challenger, champion} != set(played.match.competitors) or challenger == champion:
        raise ValueError(f"boss match {played.match.competitors} must be exactly challenger {challenger!r} and champion {champion!r}")
    if len(played.tasks) != played.match.tasks or len(played.directions) != played.match.tasks:
        raise ValueError(f"boss round planned {played.match.tasks} tasks, got {len(played.tasks)}")
    results = tuple(
        boss_task(i, _outcome_of(outcomes, challenger), _outcome_of(outcomes, champion), direction, rules)
        for i, (direction, outcomes) in enumerate(zip(played.directions, played.tasks, strict=True))
    )
    taken = sum(r.taken for r in results)
    needed = len(results) // 2 + 1
    return BossDecision(challenger, champion, results, taken, needed, crowned=taken >= needed)
