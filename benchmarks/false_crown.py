"""How often the boss round crowns the wrong challenger (docs/rules.md, 'Study: false crowns').

Part 1, the candidate procedures (issue #15): each trial is one boss decision between a champion of
true loss 1.0 and a challenger that is equal (a crown is a false crown) or 10% better (a crown is a
true crown); every run scores ``true * (1 + sigma * z)`` (run noise: training and evaluation
together), at 5% and at the measured 5.1% (``benchmarks.noise``). Each candidate's decision is the
engine's rule written over arrays; a sample of trials is re-decided by ``decide_boss`` itself to check that the two agree. Runs
are counted for both players (a boss task costs 2 runs).

Part 2, the majority rule and its bootstrap gate: on each task every run gets a run-level score
``true * (1 + noise * z)`` (training noise, the 1/3/5% of the table), and ``EXAMPLES`` per-example
scores ``run level * difficulty_k * (1 + EXAMPLE_NOISE * e)`` (``EXAMPLE_NOISE`` 0.2 or 1.0) with a
difficulty shared by both runs (paired examples); the task score is the mean of the examples.

Run from the repo root: ``.venv/bin/python -m benchmarks.false_crown [--json]``
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from benchmarks import crown_candidates
from trainarena.contract import Direction
from trainarena.engine import Match, PlayedMatch, TaskOutcome, bootstrap_win_fraction, boss_decision
from trainarena.settings import TournamentRules

TRIALS = 4000  # per cell; a false-crown rate of 5% is then known to about +-0.7% (one s.e. ~0.35%)
EXAMPLES = 100  # per-example scores per boss task (a small hidden split)
EXAMPLE_NOISES = (0.2, 1.0)  # spread of one example's loss around the run's level: tight / very noisy metric
NOISES = (0.01, 0.03, 0.05)
BETTER = 0.10  # the truly better challenger's loss is 10% lower
CHUNK = 1000  # rows per bootstrap matmul, to bound memory
CHECKED_TRIALS = 25  # trials per cell re-decided by the engine's boss_decision


def draw_boss_rounds(
    rng: np.random.Generator, trials: int, tasks: int, noise: float, example_noise: float, challenger_loss: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-example scores, shape (trials, tasks, 2 [challenger, champion], EXAMPLES)."""
    truth = np.array([challenger_loss, 1.0])[None, None, :, None]
    run_level = truth * (1.0 + noise * rng.standard_normal((trials, tasks, 2, 1)))
    difficulty = np.exp(0.3 * rng.standard_normal((trials, tasks, 1, EXAMPLES)))
    difficulty /= difficulty.mean(axis=-1, keepdims=True)
    examples = run_level * difficulty * (1.0 + example_noise * rng.standard_normal((trials, tasks, 2, EXAMPLES)))
    return examples.mean(axis=-1), examples


def decide(scores: np.ndarray, examples: np.ndarray, rules: TournamentRules, gate: bool) -> np.ndarray:
    """Crowned per trial, by the engine's rule written over arrays."""
    challenger, champion = scores[..., 0], scores[..., 1]
    lead = champion - challenger  # lower is better
    taken = lead >= np.maximum(rules.boss_margin * np.abs(champion), rules.boss_margin_floor)
    if gate:
        leads = examples[..., 1, :] - examples[..., 0, :]
        rows = np.flatnonzero(taken.ravel())  # the gate is only consulted where the margin is met
        flat = leads.reshape(-1, EXAMPLES)
        passed = np.zeros(taken.size, dtype=bool)
        for start in range(0, rows.size, CHUNK):
            chunk = rows[start : start + CHUNK]
            fractions = bootstrap_win_fraction(flat[chunk], rules.bootstrap_resamples, rules.bootstrap_seed)
            passed[chunk] = fractions >= rules.bootstrap_confidence
        taken = taken & passed.reshape(taken.shape)
    return taken.sum(axis=-1) > taken.shape[-1] // 2


def engine_agrees(scores: np.ndarray, examples: np.ndarray, rules: TournamentRules, crowned: np.ndarray) -> bool:
    """Re-decide a few trials with the engine's own boss_decision."""
    tasks = scores.shape[1]
    match = Match("boss", ("new", "old"), tasks, 1)
    for trial in range(min(CHECKED_TRIALS, len(scores))):
        outcomes = tuple(
            tuple(TaskOutcome(name, float(scores[trial, t, i]), None, tuple(examples[trial, t, i].tolist())) for i, name in enumerate(("new", "old")))
            for t in range(tasks)
        )
        decision = boss_decision(PlayedMatch(match, (Direction.LOWER,) * tasks, outcomes), "new", "old", rules)
        if decision.crowned != bool(crowned[trial]):
            return False
    return True


def crown_rate(noise: float, example_noise: float, challenger_loss: float, gate: bool, seed: int) -> float:
    rules = TournamentRules(boss_rule="majority", bootstrap_gate=gate)
    rng = np.random.default_rng(seed)
    scores, examples = draw_boss_rounds(rng, TRIALS, rules.boss_tasks_text, noise, example_noise, challenger_loss)
    crowned = decide(scores, examples, rules, gate)
    if not engine_agrees(scores, examples, rules, crowned):
        raise AssertionError("the vectorised rule and boss_decision disagree")
    return float(crowned.mean())


def gate_study() -> list[dict[str, float]]:
    """Part 2: the majority rule with and without the bootstrap gate, per task and example noise."""
    rows = []
    # Same seed with and without the gate: the gated cells are the same rounds, judged more strictly.
    scenarios = [(1.0, False), (1.0, True), (1.0 - BETTER, False), (1.0 - BETTER, True)]
    for k, noise in enumerate(NOISES):
        for m, example_noise in enumerate(EXAMPLE_NOISES):
            cells = [crown_rate(noise, example_noise, loss, gate, seed=1000 * k + 100 * m + j // 2) for j, (loss, gate) in enumerate(scenarios)]
            rows.append({"task_noise": noise, "example_noise": example_noise, "false_crown": cells[0],
                         "false_crown_gated": cells[1], "true_crown": cells[2], "true_crown_gated": cells[3]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args = parser.parse_args()
    start = time.perf_counter()
    candidates = crown_candidates.study()
    gated = gate_study()
    if args.json:
        print(json.dumps({"default": candidates["default"], "candidates": candidates, "trials": crown_candidates.TRIALS,
                          "majority_gate": gated, "seconds": round(time.perf_counter() - start, 1)}, indent=2))
        return
    print(f"Part 1: candidates, {crown_candidates.TRIALS} trials a cell (s.e. of 1%: 0.03%);")
    print("false = equal challenger crowned, true = 10%-better crowned; runs per boss")
    print("decision (both players, mean over the two challengers) and at most.")
    print("\n".join(crown_candidates.table(candidates)))
    rules = TournamentRules(boss_rule="majority")
    print(f"\nPart 2: majority rule and bootstrap gate, {rules.boss_tasks_text} tasks, {TRIALS} trials a cell,")
    print(f"{EXAMPLES} examples/task, gate {rules.bootstrap_confidence:.0%} one-sided, {rules.bootstrap_resamples} resamples")
    print(f"{'task':>5}{'example':>8}{'false':>9}{'+ gate':>9}{'true':>9}{'+ gate':>9}")
    for row in gated:
        print(f"{row['task_noise']:>5.0%}{row['example_noise']:>8g}{row['false_crown']:>9.2%}{row['false_crown_gated']:>9.2%}"
              f"{row['true_crown']:>9.2%}{row['true_crown_gated']:>9.2%}")
    print(f"({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
