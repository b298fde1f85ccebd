"""Does the house recipe earn its place? The house baseline against TRL's defaults (and, on request,
the other honest examples) on the same instruct tasks, budgets and seeds, scored on the hidden split.

Each script runs as a subprocess with the contract's arguments and environment (not sandboxed: this
measures training quality, not isolation), one at a time so they do not share the CPU. Artifacts are
scored with the instruct task plugin's own evaluation. Target: the house loss at least 15% lower than
trl_defaults' on every task (ratio house/defaults <= 0.85).

Run from the repo root: ``.venv/bin/python -m benchmarks.quality [--budget 45] [--tasks arithmetic strings]``
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.script_runner import run_contract_script
from trainarena.assets import ensure_assets
from trainarena.contract import TaskType
from trainarena.settings import Settings
from trainarena.tasks import TaskDefinition, get_task_type

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPETITORS = REPO_ROOT / "examples" / "competitors"
HOUSE, DEFAULTS = "baseline", "trl_defaults"
TARGET_RATIO = 0.85  # house loss / defaults loss must be at most this


@dataclass(frozen=True)
class Outcome:
    script: str
    task: str
    loss: float | None
    wall_seconds: float
    exit_code: int | None
    note: str = ""  # the script's summary line, or why it failed


def benchmark_task(name: str, assets, scripts: list[str], budget: float, seed: int, settings: Settings) -> list[Outcome]:
    plugin = get_task_type(TaskType.INSTRUCT)
    task = TaskDefinition(name=name, task_type=TaskType.INSTRUCT, base_model=str(assets.tiny_llama),
                          dataset={"source": str(assets.datasets[name]), **assets.dataset_fields[name]},
                          budget_seconds=budget, seed=seed)
    outcomes = []
    with tempfile.TemporaryDirectory(prefix=f"quality-{name}-") as scratch:
        root = Path(scratch)
        prepared = plugin.prepare(task, root / "train", root / "hidden", settings)
        base = plugin.evaluate(task, prepared, assets.tiny_llama, settings)
        outcomes.append(Outcome("(base model)", name, base.score, 0.0, 0, base.failure or ""))
        for script in scripts:
            output = root / "out" / script
            output.mkdir(parents=True)
            code, wall, last_line = run_contract_script(COMPETITORS / script / "train.py", TaskType.INSTRUCT, assets.tiny_llama,
                                                        prepared.train_file, output, budget, seed)
            if code != 0:
                outcomes.append(Outcome(script, name, None, wall, code, f"exit {code}: {last_line}"))
                continue
            evaluation = plugin.evaluate(task, prepared, output, settings)
            outcomes.append(Outcome(script, name, evaluation.score, wall, code, evaluation.failure or last_line))
            print(f"  {name:<22} {script:<14} loss {_fmt(evaluation.score)}  wall {wall:5.1f}s", flush=True)
    return outcomes


def print_table(outcomes: list[Outcome], tasks: list[str], budget: float) -> bool:
    """The per-task table and the house/defaults ratios; True when every ratio meets the target."""
    print(f"\nhidden-split loss (mean cross-entropy over output tokens; lower is better), budget {budget:g} s")
    print(f"{'task':<22} {'script':<14} {'loss':>8} {'wall s':>7}  note")
    for outcome in outcomes:
        print(f"{outcome.task:<22} {outcome.script:<14} {_fmt(outcome.loss):>8} {outcome.wall_seconds:>7.1f}  {outcome.note}")
    ok = True
    print(f"\n{'task':<22} {'house/defaults':>15}  (target <= {TARGET_RATIO})")
    for task in tasks:
        losses = {o.script: o.loss for o in outcomes if o.task == task}
        house, defaults = losses.get(HOUSE), losses.get(DEFAULTS)
        if house is None or defaults is None:
            print(f"{task:<22} {'n/a':>15}  a run failed")
            ok = False
            continue
        ratio = house / defaults
        ok = ok and ratio <= TARGET_RATIO
        print(f"{task:<22} {ratio:>15.3f}  {'OK' if ratio <= TARGET_RATIO else 'MISSED'}")
    return ok


def _fmt(value: float | None) -> str:
    return "failed" if value is None else f"{value:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=45.0, help="seconds per run (imports included)")
    parser.add_argument("--tasks", nargs="+", default=["arithmetic", "strings"], help="synthetic dataset names")
    parser.add_argument("--scripts", nargs="+", default=[HOUSE, DEFAULTS], help="example directories to compare")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache-dir", type=Path, default=REPO_ROOT / ".trainarena" / "cache")
    args = parser.parse_args()
    settings = Settings()
    assets = ensure_assets(args.cache_dir)
    unknown = sorted(set(args.tasks) - set(assets.datasets))
    if unknown:
        raise SystemExit(f"unknown task(s) {unknown}; available: {sorted(assets.datasets)}")
    outcomes = []
    for name in args.tasks:
        outcomes += benchmark_task(name, assets, args.scripts, args.budget, args.seed, settings)
    ok = print_table(outcomes, args.tasks, args.budget)
    print("\nverdict:", "house beats TRL defaults by >= 15% on every task" if ok else "TARGET MISSED")


if __name__ == "__main__":
    main()
