"""How noisy is a score? Runs the honest example scripts repeatedly on each text task type.

Each run is scored on the hidden split by the task plugin's own evaluation; prints the relative
spread of the scores per type and script (issue #15, docs/rules.md "Noise").

- **Training noise** (between runs): the relative standard deviation of the scores of repeated runs,
  ``std(ddof=1) / |mean|``, in two groups: *same seed* (one seed run alone, then twice at once so
  each run loads the CPU for the other: the budget is wall-clock time, so the steps a run gets depend
  on the load) and *across seeds* (``--seeds`` seeds, each run alone).
- **Evaluation noise** (between hidden examples): the standard error of one run's score from its
  per-example values, relative to the score. The values are the example's *shares* of the score
  (``engine.scores``), so the score is ``sum_k share_k`` and a bootstrap over the hidden examples, the
  gate's, has the standard error ``sqrt(n) * std(shares)``; averaged over the runs.

Relative means relative to ``|mean score|`` for every type, GRPO included, because that is the scale
the paired boss rule divides a lead by (the larger |score| of the two players). GRPO rewards sit near
0, so the same absolute spread reads as a larger relative one; the JSON also gives the absolute
spread, the base model's score, and GRPO's spread relative to its gain over the base model.

Run from the repo root: ``.venv/bin/python -m benchmarks.noise [--json] [--types ...] [--scripts ...]
[--seeds N] [--budget S] [--cache-dir DIR]`` (defaults: the four text types, both scripts, 2 seeds,
15 s a run: about 9 minutes on 2 cores). Image is left out: its assets and img2img scoring do not fit
that time (``benchmarks.quality_image``). Measured tables: docs/rules.md "Noise".
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.script_runner import run_contract_script
from trainarena.assets import ensure_assets
from trainarena.contract import TaskType
from trainarena.settings import Settings
from trainarena.tasks import TaskDefinition, get_task_type

REPO_ROOT = Path(__file__).resolve().parent.parent
HOUSE = REPO_ROOT / "examples" / "competitors" / "baseline" / "train.py"
SCRIPTS = {  # per type: the house script and another honest example
    "instruct": {"baseline": HOUSE, "trl_defaults": REPO_ROOT / "examples" / "competitors" / "trl_defaults" / "train.py"},
    **{t: {"baseline": HOUSE, "trl_defaults": REPO_ROOT / "benchmarks" / "trl_defaults_types.py"} for t in ("chat", "dpo", "grpo")},
}
TEXT_TYPES = tuple(SCRIPTS)
LOADED_COPIES = 2  # the same seed run this many times at once: each run is the others' load
TASK_SEED = 0  # the task's split; the runs' seeds are 1..--seeds


@dataclass(frozen=True)
class RunResult:
    script: str
    seed: int
    loaded: bool  # ran at the same time as another run
    score: float | None
    eval_se: float | None  # standard error of the score over hidden examples
    wall_seconds: float
    note: str  # the script's last line, or why it failed


def relative_spread(scores: Sequence[float]) -> float | None:
    """Sample standard deviation over ``|mean|``; None with fewer than 2 scores or a mean of 0.

    >>> round(relative_spread([0.9, 1.1]), 4)
    0.1414
    """
    if len(scores) < 2:
        return None
    mean = math.fsum(scores) / len(scores)
    if mean == 0:
        return None
    return sample_std(scores) / abs(mean)


def sample_std(values: Sequence[float]) -> float:
    """Standard deviation with ``ddof=1`` (needs at least 2 values)."""
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def share_standard_error(shares: Sequence[float]) -> float | None:
    """Standard error of a score that is the sum of its examples' shares, over the hidden examples:
    ``sqrt(n) * std(shares)`` (the spread of ``sum_k c_k * share_k`` over bootstrap counts ``c``,
    with the unbiased variance). For the mean types (share = value / n) it is ``std(values)/sqrt(n)``.

    >>> share_standard_error([0.25, 0.25, 0.25, 0.25])
    0.0
    """
    if len(shares) < 2:
        return None
    return math.sqrt(len(shares)) * sample_std(shares)


def summarise(runs: Sequence[RunResult], base_score: float | None) -> dict[str, float | int | None]:
    """One script's spreads on one type: same seed (seed 1, alone and loaded), across seeds (alone)."""
    ok = [r for r in runs if r.score is not None]
    scores = [r.score for r in ok]
    same_seed = [r.score for r in ok if r.seed == 1]
    across = [r.score for r in ok if not r.loaded]
    relative_se = [r.eval_se / abs(r.score) for r in ok if r.eval_se is not None and r.score]
    mean = math.fsum(scores) / len(scores) if scores else None
    gain = None if mean is None or base_score is None else abs(mean - base_score)
    return {
        "runs": len(runs), "failed": len(runs) - len(ok), "mean": mean,
        "std_all": sample_std(scores) if len(scores) > 1 else None,
        "same_seed": relative_spread(same_seed), "across_seeds": relative_spread(across),
        "all_runs": relative_spread(scores),
        "eval": math.fsum(relative_se) / len(relative_se) if relative_se else None,
        "all_runs_over_gain": (sample_std(scores) / gain) if len(scores) > 1 and gain else None,
    }


def training_noise(summary: dict[str, float | int | None]) -> float | None:
    """The larger of a script's same-seed and across-seed spreads: its between-run noise."""
    values = [v for v in (summary["same_seed"], summary["across_seeds"]) if isinstance(v, float)]
    return max(values) if values else None


def _run(plugin, task, prepared, script: Path, output: Path, budget: float, seed: int, settings: Settings, loaded: bool) -> RunResult:
    output.mkdir(parents=True)
    code, wall, note = run_contract_script(script, task.task_type, Path(task.base_model), prepared.train_file, output, budget,
                                           seed, {"OMP_NUM_THREADS": "1"})
    if code != 0:
        return RunResult(output.name, seed, loaded, None, None, wall, f"exit {code}: {note}")
    evaluation = plugin.evaluate(task, prepared, output, settings)
    se = share_standard_error(evaluation.per_example) if evaluation.score is not None else None
    return RunResult(output.name, seed, loaded, evaluation.score, se, wall, evaluation.failure or note)


def benchmark_type(task_type: str, assets, scripts: Sequence[str], seeds: int, budget: float, settings: Settings) -> dict:
    """Every script's runs on one task of the type, and their spreads."""
    dataset = assets.datasets_of(task_type)[0]
    task = TaskDefinition(dataset.name, TaskType(task_type), str(assets.tiny_llama), dataset.dataset_spec(), budget, TASK_SEED)
    plugin = get_task_type(task_type)
    result: dict = {"task": dataset.name, "direction": plugin.direction.value, "scripts": {}}
    with tempfile.TemporaryDirectory(prefix=f"noise-{task_type}-") as scratch:
        root = Path(scratch)
        prepared = plugin.prepare(task, root / "train", root / "hidden", settings)
        base = plugin.evaluate(task, prepared, assets.tiny_llama, settings).score
        result["base_score"] = base
        for name in scripts:
            script = SCRIPTS[task_type][name]
            runs = [_run(plugin, task, prepared, script, root / f"seed{s}" / name, budget, s, settings, False) for s in range(1, seeds + 1)]
            with ThreadPoolExecutor(LOADED_COPIES) as pool:
                loaded = [pool.submit(_run, plugin, task, prepared, script, root / f"loaded{k}" / name, budget, 1, settings, True)
                          for k in range(LOADED_COPIES)]
                runs += [future.result() for future in loaded]
            for r in runs:
                shown = "failed" if r.score is None else f"{r.score:.4f}"
                print(f"  {task_type:<8} {name:<13} seed {r.seed}{' loaded' if r.loaded else '       '} {shown:>8}"
                      f"  wall {r.wall_seconds:5.1f}s", file=sys.stderr, flush=True)
            result["scripts"][name] = {"summary": summarise(runs, base), "runs": [asdict(r) for r in runs]}
    return result


def table(results: dict[str, dict]) -> list[str]:
    """Relative spreads per type and script, at most 80 columns."""
    pct = lambda v: "n/a" if v is None else f"{v:.2%}"  # noqa: E731
    lines = [f"{'type':<9}{'script':<14}{'mean':>9}{'runs':>6}{'same seed':>11}{'seeds':>9}{'all':>9}{'eval':>9}",
             "-" * 76]
    for task_type, result in results.items():
        base = "n/a" if result["base_score"] is None else f"{result['base_score']:.4f}"
        lines.append(f"{task_type:<9}{'(base model)':<14}{base:>9}")
        for name, data in result["scripts"].items():
            s = data["summary"]
            mean = "n/a" if s["mean"] is None else f"{s['mean']:.4f}"
            runs = f"{s['runs'] - s['failed']}/{s['runs']}"
            lines.append(f"{task_type:<9}{name:<14}{mean:>9}{runs:>6}{pct(s['same_seed']):>11}{pct(s['across_seeds']):>9}"
                         f"{pct(s['all_runs']):>9}{pct(s['eval']):>9}")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--types", nargs="+", default=list(TEXT_TYPES), choices=TEXT_TYPES)
    parser.add_argument("--scripts", nargs="+", default=list(SCRIPTS["instruct"]), choices=list(SCRIPTS["instruct"]),
                        help="the house script and/or the other honest example")
    parser.add_argument("--seeds", type=int, default=2, help="seeds run alone per script (at least 2)")
    parser.add_argument("--budget", type=float, default=15.0, help="seconds per run (imports included)")
    parser.add_argument("--cache-dir", type=Path, default=Settings().assets_dir, help="the tiny offline assets")
    args = parser.parse_args(argv)
    if args.seeds < 2:
        parser.error("--seeds must be at least 2: a spread across seeds needs two runs")
    started = time.perf_counter()
    settings, assets = Settings(), ensure_assets(args.cache_dir)
    results = {t: benchmark_type(t, assets, args.scripts, args.seeds, args.budget, settings) for t in args.types}
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores, load {os.getloadavg()[0]:.1f}"
    header = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "budget_seconds": args.budget, "seeds": args.seeds,
              "loaded_copies": LOADED_COPIES, "machine": machine, "seconds": round(time.perf_counter() - started, 1)}
    data = {**header, "types": results,
            "training_noise": {t: {n: training_noise(d["summary"]) for n, d in r["scripts"].items()} for t, r in results.items()}}
    print(json.dumps(data, indent=2) if args.json else "\n".join(report(data)))


def report(data: dict) -> list[str]:
    """The printed form of a run's JSON object: its conditions, the table, its duration."""
    return [f"{data['date']}, budget {data['budget_seconds']:g} s, {data['seeds']} seeds alone + seed 1 x{data['loaded_copies']} at once;",
            f"{data['machine']}.",
            "Relative spreads (std / |mean|): same seed, across seeds, all runs (training",
            "noise); eval: standard error over the hidden examples / score.",
            *table(data["types"]), f"({data['seconds']:.0f} s)"]


if __name__ == "__main__":
    main()
