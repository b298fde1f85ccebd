"""Is the house script the strongest known method at the demo's budgets? (issue 17, part 3)

Per task type, the house script (examples/competitors/baseline, image_baseline for images), the
library-defaults reference (trl_defaults for instruct, benchmarks/trl_defaults_types.py for chat, dpo
and grpo, image_defaults for images) and every honest example declaring the type train on the same
tasks, budget and seeds: instruct on the arithmetic and strings datasets, dpo on
preference_arithmetic and preference_units_custom, chat and grpo on the assets' dataset of that type,
image on person_zxq and style_qrt (tiny SD pipeline). Each (type, task, seed) prepares the task once
with the seed and scores the base model once; every script then runs alone, unsandboxed, with the
contract's arguments and the threads one of the demo's run slots gets; the task plugin's own
evaluate() scores it on the hidden split.

The report shows each contender's mean, sd, min..max and n over the seeds, then the verdicts
(rules in benchmarks/quality_verdicts.py): house vs defaults, defaults/house >= 1.15 in the mean
on lower-is-better types; for GRPO, house reward gain over the base model >= 3x the defaults' gain
(when the defaults gain <= 0: the house gain positive and above the defaults' by more than the seed
sd of their difference); house vs every honest example: at least as good in the mean. For images
also on the per-seed mean of the two tasks.

Run from the repo root:
``.venv/bin/python -m benchmarks.quality [--types ...] [--seeds 1 2 3] [--budget S] [--scripts NAME ...] [--clock cpu
[--parallel N]] [--json]``
"""

from __future__ import annotations

import argparse
import json
import math
import textwrap
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from benchmarks.quality_runs import (
    ALL_TYPES,
    BASE,
    TEXT_TYPES,
    Contender,
    RunScore,
    contenders,
    honest_examples,
    play_seed,
    progress,
    task_names,
)
from benchmarks.quality_verdicts import (
    DEFAULTS_RATIO_TARGET,
    GAIN_RATIO_TARGET,
    Verdict,
    defaults_gain_verdict,
    defaults_ratio_verdict,
    example_verdict,
    mean_over_tasks,
    summarize,
)
from trainarena.cli.demo import DEMO_PARALLEL, threads_per_run
from trainarena.demo.image import IMAGE_DEMO_BUDGET_SECONDS
from trainarena.demo.text import TEXT_DEMO_BUDGET_SECONDS
from trainarena.pipeline import thread_env
from trainarena.settings import Settings
from trainarena.tasks import get_task_type

MEAN_OF_TASKS = "(mean of tasks)"  # the image verdicts' extra row: per seed, the mean over its tasks
WIDTH = 80


def type_verdicts(task_type: str, results: dict[str, dict], roster: list[Contender]) -> list[Verdict]:
    """Every verdict of one type from its per-task scores (``results[task]["scores"][name]``)."""
    lower = get_task_type(task_type).direction.value == "lower"
    house, defaults = roster[0].name, roster[1].name
    tables = {task: {**entry["scores"], BASE: entry["base"]} for task, entry in results.items()}
    if task_type == "image" and len(tables) > 1:
        tables[MEAN_OF_TASKS] = {name: mean_over_tasks([t[name] for t in tables.values()]) for name in tables[next(iter(tables))]}
    verdicts = []
    for task, scores in tables.items():
        if lower:
            verdicts.append(defaults_ratio_verdict(task, defaults, scores[house], scores[defaults]))
        else:
            verdicts.append(defaults_gain_verdict(task, defaults, scores[house], scores[defaults], scores[BASE]))
        verdicts += [example_verdict(task, c.name, scores[house], scores[c.name], lower) for c in roster[2:]]
    return verdicts


def print_type(task_type: str, results: dict[str, dict], runs: dict[str, list[RunScore]], verdicts: list[Verdict],
               budget: float, threads: int, clock: str) -> None:
    direction = get_task_type(task_type).direction.value
    for task, entry in results.items():
        print(f"\n{task_type} / {task}: hidden-split score, {direction} is better")
        print(f"(budget {budget:g} s on the {clock} clock, {threads} thread(s) per run)")
        print(f"{'contender':<22}{'mean':>10}{'sd':>10}  {'min..max':<21}{'n':>5}{'steps':>7}")
        for name, scores in {BASE: entry["base"], **entry["scores"]}.items():
            s = summarize(scores)
            steps = [r.steps for r in runs[task] if r.contender == name and r.steps is not None]
            span = "" if s.low is None else f"{_g(s.low)}..{_g(s.high)}"
            mean_steps = f"{sum(steps) / len(steps):.0f}" if steps else ""
            print(f"{name:<22}{_g(s.mean):>10}{_g(s.sd):>10}  {span:<21}{f'{s.n}/{s.seeds}':>5}{mean_steps:>7}")
        for run in runs[task]:
            if run.score is None:
                _print_wrapped(f"{run.contender} seed {run.seed} failed: {run.failure}", "  ")
    _print_verdicts(task_type, verdicts)


def _print_verdicts(task_type: str, verdicts: list[Verdict]) -> None:
    print(f"\nverdicts, {task_type}:")
    for verdict in verdicts:
        mark = "OK" if verdict.met else "MISSED"
        seeds = f"every seed: {'yes' if verdict.every_seed else 'no'} ({verdict.seeds_met}/{verdict.seeds})"
        if verdict.rule == "defaults_ratio":
            head = f"  vs {verdict.other} on {verdict.task}: defaults/house >= {DEFAULTS_RATIO_TARGET:g}?"
            body = f"    mean {_f(verdict.measure)}  min {_f(verdict.worst)}  {mark}  {seeds}"
        elif verdict.rule == "defaults_gain":
            head = f"  vs {verdict.other} on {verdict.task}: gain over base >= {GAIN_RATIO_TARGET:g}x?"
            body = (f"    house {_signed(verdict.house_gain)}  defaults {_signed(verdict.other_gain)}"
                    f"  ratio {_f(verdict.measure)}  {mark}  {seeds}")
        else:
            head = f"  vs {verdict.other} on {verdict.task}: house mean at least as good?"
            body = f"    house {_g(verdict.measure)}  {verdict.other} {_g(verdict.worst)}  {mark}  wins {verdict.seeds_met}/{verdict.seeds}"
        _print_wrapped(head.lstrip(), "  ")
        _print_wrapped(body.lstrip(), "    ")
        if verdict.note:
            _print_wrapped(f"({verdict.note})", "    ")


def _print_wrapped(text: str, indent: str) -> None:
    print(textwrap.fill(text, WIDTH, initial_indent=indent, subsequent_indent=indent + "  "))


def _g(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.4g}"


def _finite(value):
    """JSON has no infinity: a ratio against a perfect (zero-loss) house is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--types", nargs="+", default=list(ALL_TYPES), choices=ALL_TYPES)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3], help="a task and every run per seed")
    parser.add_argument("--budget", type=float, help=f"seconds per run (default: the demo's, {TEXT_DEMO_BUDGET_SECONDS:g} "
                                                      f"text, {IMAGE_DEMO_BUDGET_SECONDS:g} image)")
    parser.add_argument("--scripts", nargs="+", help="only these honest examples (house and defaults always run)")
    parser.add_argument("--threads", type=int, help="threads per run (default: one of the demo's run slots' share)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="what a script's budget counts: wall seconds, as the platform does, or its own CPU "
                        "seconds over its threads, which load on the machine does not shrink")
    parser.add_argument("--parallel", type=int, default=1,
                        help="(task, seed) plays at once (default 1: each script alone); more only with --clock cpu, "
                        "where a script's budget is its own CPU time, which sharing the cores does not shrink")
    parser.add_argument("--assets-dir", type=Path, help="offline assets cache (default: the installation's)")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout; progress on stderr")
    args = parser.parse_args(argv)
    if args.parallel < 1:
        parser.error("--parallel: at least 1")
    if args.parallel > 1 and args.clock != "cpu":
        parser.error("--parallel above 1 needs --clock cpu: on the wall clock, plays at once take each other's cores")
    known = {c.name for t in args.types for c in honest_examples(t)}
    if args.scripts and not set(args.scripts) <= known:
        parser.error(f"--scripts: {sorted(set(args.scripts) - known)} are not honest examples of "
                     f"{' '.join(args.types)}; choose from {sorted(known)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    settings = Settings()
    threads = args.threads or threads_per_run(settings, DEMO_PARALLEL).sandbox.cpus_per_run
    assets_dir = args.assets_dir or settings.assets_dir
    document: dict = {"seeds": args.seeds, "threads_per_run": threads, "clock": args.clock, "types": {}}
    cpu_clock_threads = threads if args.clock == "cpu" else None
    for task_type in args.types:
        if task_type in TEXT_TYPES:
            from trainarena.assets import ensure_assets

            assets, budget = ensure_assets(assets_dir), args.budget or TEXT_DEMO_BUDGET_SECONDS
        else:
            from trainarena.assets.image import ensure_image_assets

            assets, budget = ensure_image_assets(assets_dir), args.budget or IMAGE_DEMO_BUDGET_SECONDS
        roster = contenders(task_type, args.scripts)
        results, runs = {}, {}
        plays = [(task, seed) for task in task_names(task_type, assets) for seed in args.seeds]
        with ThreadPoolExecutor(args.parallel) as pool:  # each play's runs and evaluations are child processes
            futures = [pool.submit(play_seed, task_type, task, seed, assets, roster, budget, thread_env(threads), settings,
                                   cpu_clock_threads) for task, seed in plays]
            played = [future.result() for future in futures]
        for task in dict.fromkeys(task for task, _ in plays):
            runs[task] = [run for (played_task, _), seed_runs in zip(plays, played, strict=True) if played_task == task
                          for run in seed_runs]
            scores = {c.name: {r.seed: r.score for r in runs[task] if r.contender == c.name} for c in roster}
            results[task] = {"base": {r.seed: r.score for r in runs[task] if r.contender == BASE}, "scores": scores}
        verdicts = type_verdicts(task_type, results, roster)
        if not args.json:
            print_type(task_type, results, runs, verdicts, budget, threads, args.clock)
        document["types"][task_type] = {
            "direction": get_task_type(task_type).direction.value,
            "budget_seconds": budget,
            "contenders": {c.name: c.role for c in roster},
            "tasks": {task: {"base": results[task]["base"], "runs": [asdict(r) for r in runs[task]]} for task in results},
            "verdicts": [asdict(v) for v in verdicts],
        }
    verdicts = [v for t in document["types"].values() for v in t["verdicts"]]
    met = sum(v["met"] for v in verdicts)
    if args.json:
        print(json.dumps(_finite(document), indent=2))
    else:
        print(f"\npart 3: {met} of {len(verdicts)} verdicts met")
    progress(f"done: {met} of {len(verdicts)} verdicts met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
