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

Relative means relative to the scale the paired boss rule divides a lead by: the task's lead unit
where its evaluation gives one (GRPO with declared reward ranges: the weighted reward span, since a
reward's zero is arbitrary), else ``|mean score|`` (the larger |score| of the two players). The JSON
also gives the absolute spread, the base model's score, the unit, and the spread relative to the gain
over the base model.

Run from the repo root: ``.venv/bin/python -m benchmarks.noise [--json] [--types ...] [--scripts ...]
[--seeds N] [--budget S] [--cache-dir DIR]`` (defaults: the four text types, both scripts, 2 seeds,
15 s a run: about 9 minutes on 2 cores). Image is measured only when named (``--types image``: the
house image script and diffusers' defaults on the person task; about 4-5 minutes a script at 40 s).
Measured tables: docs/rules.md "Noise".
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
from trainarena.assets.image import ensure_image_assets
from trainarena.contract import TaskType
from trainarena.settings import Settings
from trainarena.tasks import TaskDefinition, get_task_type

REPO_ROOT = Path(__file__).resolve().parent.parent
HOUSE = REPO_ROOT / "examples" / "competitors" / "baseline" / "train.py"
SCRIPTS = {  # per type: the house script and another honest example
    "instruct": {"baseline": HOUSE, "trl_defaults": REPO_ROOT / "examples" / "competitors" / "trl_defaults" / "train.py"},
    **{t: {"baseline": HOUSE, "trl_defaults": REPO_ROOT / "benchmarks" / "trl_defaults_types.py"} for t in ("chat", "dpo", "grpo")},
    # image: the house image script and diffusers' example defaults, in the same two roles
    "image": {"baseline": REPO_ROOT / "examples" / "competitors" / "image_baseline" / "train.py",
              "trl_defaults": REPO_ROOT / "examples" / "competitors" / "image_defaults" / "train.py"},
}
TEXT_TYPES = ("instruct", "chat", "dpo", "grpo")
IMAGE_TASK = "person_zxq"  # one of the image tasks of benchmarks.quality
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


def relative_spread(scores: Sequence[float], unit: float | None = None) -> float | None:
    """Sample standard deviation over ``unit``, or over ``|mean|`` without one; None with fewer than 2
    scores or a mean of 0 (and no unit).

    >>> round(relative_spread([0.9, 1.1]), 4), round(relative_spread([0.04, 0.06], unit=1.0), 4)
    (0.1414, 0.0141)
    """
    if len(scores) < 2:
        return None
    scale = unit if unit is not None else abs(math.fsum(scores) / len(scores))
    if scale == 0:
        return None
    return sample_std(scores) / scale


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


def summarise(runs: Sequence[RunResult], base_score: float | None, unit: float | None = None) -> dict[str, float | int | None]:
    """One script's spreads on one type: same seed (seed 1, alone and loaded), across seeds (alone);
    relative to the task's lead ``unit`` when it has one, else to |mean| (|score| for eval)."""
    ok = [r for r in runs if r.score is not None]
    scores = [r.score for r in ok]
    same_seed = [r.score for r in ok if r.seed == 1]
    across = [r.score for r in ok if not r.loaded]
    relative_se = [r.eval_se / (unit or abs(r.score)) for r in ok if r.eval_se is not None and (unit or r.score)]
    mean = math.fsum(scores) / len(scores) if scores else None
    gain = None if mean is None or base_score is None else abs(mean - base_score)
    return {
        "runs": len(runs), "failed": len(runs) - len(ok), "mean": mean,
        "std_all": sample_std(scores) if len(scores) > 1 else None,
        "same_seed": relative_spread(same_seed, unit), "across_seeds": relative_spread(across, unit),
        "all_runs": relative_spread(scores, unit),
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


def task_of(task_type: str, budget: float, cache_dir: Path) -> TaskDefinition:
    """The benchmark's task of a type: the first shipped dataset of a text type on the tiny LLaMA, or
    the person task on the tiny Stable Diffusion pipeline (assets built once, in ``cache_dir``)."""
    if task_type == "image":
        images = ensure_image_assets(cache_dir)
        dataset = {"source": str(images.datasets[IMAGE_TASK]), "kind": images.dataset_kinds[IMAGE_TASK], "model_type": "sd"}
        return TaskDefinition(IMAGE_TASK, TaskType.IMAGE, str(images.tiny_sd), dataset, budget, TASK_SEED)
    assets = ensure_assets(cache_dir)
    dataset = assets.datasets_of(task_type)[0]
    return TaskDefinition(dataset.name, TaskType(task_type), str(assets.tiny_llama), dataset.dataset_spec(), budget, TASK_SEED)


def benchmark_type(task: TaskDefinition, scripts: Sequence[str], seeds: int, budget: float, settings: Settings) -> dict:
    """Every script's runs on the task, and their spreads."""
    task_type = task.task_type.value
    plugin = get_task_type(task_type)
    result: dict = {"task": task.name, "direction": plugin.direction.value, "scripts": {}}
    with tempfile.TemporaryDirectory(prefix=f"noise-{task_type}-") as scratch:
        root = Path(scratch)
        prepared = plugin.prepare(task, root / "train", root / "hidden", settings)
        base_evaluation = plugin.evaluate(task, prepared, Path(task.base_model), settings)
        base, unit = base_evaluation.score, base_evaluation.lead_unit
        result |= {"base_score": base, "base_failure": base_evaluation.failure, "lead_unit": unit}
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
            result["scripts"][name] = {"summary": summarise(runs, base, unit), "runs": [asdict(r) for r in runs]}
    return result


def table(results: dict[str, dict]) -> list[str]:
    """Relative spreads per type and script, at most 80 columns."""
    pct = lambda v: "n/a" if v is None else f"{v:.2%}"  # noqa: E731
    lines = [f"{'type':<9}{'script':<14}{'mean':>9}{'runs':>6}{'same seed':>11}{'seeds':>9}{'all':>9}{'eval':>9}",
             "-" * 76]
    for task_type, result in results.items():
        base = "n/a" if result["base_score"] is None else f"{result['base_score']:.4f}"
        unit = "" if result.get("lead_unit") is None else f"   (spreads over the lead unit {result['lead_unit']:g})"
        lines.append(f"{task_type:<9}{'(base model)':<14}{base:>9}{unit}")
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
    parser.add_argument("--types", nargs="+", default=list(TEXT_TYPES), choices=list(SCRIPTS),
                        help="task types (default: the text types; image is slow: add it by name)")
    parser.add_argument("--scripts", nargs="+", default=list(SCRIPTS["instruct"]), choices=list(SCRIPTS["instruct"]),
                        help="the house script and/or the other honest example")
    parser.add_argument("--seeds", type=int, default=2, help="seeds run alone per script (at least 2)")
    parser.add_argument("--budget", type=float, default=15.0, help="seconds per run (imports included)")
    parser.add_argument("--cache-dir", type=Path, default=Settings().assets_dir, help="the tiny offline assets")
    args = parser.parse_args(argv)
    if args.seeds < 2:
        parser.error("--seeds must be at least 2: a spread across seeds needs two runs")
    started = time.perf_counter()
    settings = Settings()
    results = {t: benchmark_type(task_of(t, args.budget, args.cache_dir), args.scripts, args.seeds, args.budget, settings)
               for t in args.types}
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
            "Relative spreads (std / |mean|, or / the task's lead unit): same seed, across",
            "seeds, all runs (training noise); eval: standard error over the hidden examples",
            "/ score (or / the lead unit).",
            *table(data["types"]), f"({data['seconds']:.0f} s)"]


if __name__ == "__main__":
    main()
