"""How the pure engine scales: a whole simulated tournament at 10,000 entrants (target < 1 s), measured
side by side with 1,000 entrants so the per-entrant cost ratio shows whether any step went quadratic.

Run from the repo root: ``.venv/bin/python -m benchmarks.engine_scale [--json]``

The ratio is of two best-of-three timings (about 0.01 s and 0.1 s) taken in one process on a shared
machine, each of which moved by 2x between runs: it ranged from 0.37 to 1.9 across runs
(docs/benchmarks.md). A step quadratic in the entrants would put it near 10 (ten times the entrants),
so a ratio under 2 says linear; the 1 s target at 10,000 entrants is the verdict.
"""

from __future__ import annotations

import argparse
import json
import time

from trainarena.engine import simulate
from trainarena.settings import TournamentRules, WeightRules

SIZES = (1_000, 10_000)
REPEATS = 3  # best of three: the least disturbed run
TARGET_SECONDS = 1.0


def best_seconds(entrants: int, rules: TournamentRules, weight_rules: WeightRules) -> float:
    times = []
    for seed in range(REPEATS):
        start = time.perf_counter()
        simulate(entrants, seed, 0.03, 0.0, rules, weight_rules)
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    rules, weight_rules = TournamentRules(), WeightRules()
    simulate(100, 0, 0.03, 0.0, rules, weight_rules)  # warm imports and caches
    seconds = {n: best_seconds(n, rules, weight_rules) for n in SIZES}
    small, large = SIZES
    per_entrant = {n: seconds[n] / n for n in SIZES}
    ratio = per_entrant[large] / per_entrant[small]
    if args.json:
        print(json.dumps({"seconds": {str(n): seconds[n] for n in SIZES}, "us_per_entrant": {str(n): per_entrant[n] * 1e6 for n in SIZES},
                          "per_entrant_ratio": ratio, "target_seconds": TARGET_SECONDS, "target_met": seconds[large] < TARGET_SECONDS}))
        return 0
    print(f"{'entrants':>9} {'seconds':>9} {'us/entrant':>11}")
    for n in SIZES:
        print(f"{n:>9} {seconds[n]:>9.3f} {per_entrant[n] * 1e6:>11.1f}")
    print(f"scaling ratio (time per entrant at {large:,} / at {small:,}): {ratio:.2f}  (1.0 = linear)")
    verdict = "OK" if seconds[large] < TARGET_SECONDS else "OVER TARGET"
    print(f"{large:,} entrants: {seconds[large]:.3f} s (target < {TARGET_SECONDS} s): {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
